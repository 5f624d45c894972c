#!/usr/bin/python3
"""The public headers' promise: every function states how it may be called.

A TOKVOX_API declaration in codec/include/tokvox/*.h passes when a thread
tag ([thread-safe], [one thread per handle], [one thread, once], ...) is
stated in its own paragraph (the lines around it up to a blank line, which
is how a group such as "everything else on an encoder" is written) or in
the introduction of its "---- section" comment.  Every creator is marked
TOKVOX_WARN_UNUSED_RESULT, and every struct of the library API starts with
its size_t size (plugin.h's structs follow the plugin ABI's own rule,
uint32_t sizes).  And bench/ and examples/ include no private header of
codec/src.

  tests/test_headers.py [INCLUDE_DIR]
"""
import os
import re
import sys

TAG = re.compile(r"\[(thread-safe|one thread[^\]]*|any-thread|load-thread|session-thread)")
API = re.compile(r"TOKVOX_API\b[^;]*?\b(tokvox_\w+)\s*\(", re.S)
CREATOR = re.compile(r"_(create|load|load_memory|open)$")


def sections(text):
    """Pieces of the header starting at each '/* ----' section comment."""
    cuts = [m.start() for m in re.finditer(r"/\* ----", text)]
    cuts = [0] + cuts + [len(text)]
    return [text[a:b] for a, b in zip(cuts, cuts[1:]) if b > a]


def intro(section):
    """The section's leading comment (its statement for the whole section)."""
    m = re.match(r"\s*/\*.*?\*/", section, re.S)
    return m.group(0) if m and section.lstrip().startswith("/* ----") else ""


def check(path):
    text = open(path).read()
    problems = []
    for section in sections(text):
        head = intro(section)
        for para in re.split(r"\n\s*\n", section):
            for m in API.finditer(para):
                name = m.group(1)
                if not TAG.search(para) and not TAG.search(head):
                    problems.append("%s: %s states no thread rule" % (path, name))
                decl = para[m.start():m.end()]
                if CREATOR.search(name) and "WARN_UNUSED_RESULT" not in decl:
                    problems.append("%s: creator %s lacks TOKVOX_WARN_UNUSED_RESULT"
                                    % (path, name))
    if not path.endswith("plugin.h"):   # the plugin ABI's rule: uint32_t sizes (plugin.h)
        for m in re.finditer(r"typedef struct (tokvox_\w+) \{\s*([^;]*);", text):
            name, first = m.group(1), " ".join(m.group(2).split())
            if first != "size_t size":
                problems.append("%s: struct %s does not start with size_t size" % (path, name))
    return problems


def private_includes(root):
    """bench/ and examples/ programs use the public API only: no header of
    codec/src (the library's private ones)."""
    private = set(f for f in os.listdir(os.path.join(root, "codec", "src")) if f.endswith(".h"))
    problems = []
    for folder in ("bench", "examples"):
        for name in sorted(os.listdir(os.path.join(root, folder))):
            if name.endswith(".c"):
                path = os.path.join(root, folder, name)
                for inc in re.findall(r'#include\s*"([^"]+)"', open(path).read()):
                    if os.path.basename(inc) in private:
                        problems.append("%s includes the private header %s" % (path, inc))
    return problems


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    inc = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "codec", "include",
                                                             "tokvox")
    headers = sorted(os.path.join(inc, h) for h in os.listdir(inc) if h.endswith(".h"))
    problems = [p for h in headers for p in check(h)]
    problems += private_includes(os.path.join(here, ".."))
    functions = sum(len(API.findall(open(h).read())) for h in headers)
    if functions < 50:
        problems.append("only %d TOKVOX_API functions found: the pattern is broken" % functions)
    for p in problems:
        print("FAIL " + p)
    if not problems:
        print("ok: %d public functions in %d headers state their thread rules" % (
            functions, len(headers)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
