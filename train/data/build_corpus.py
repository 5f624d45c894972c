#!/usr/bin/python3
"""Rebuild the tokvox training corpus from its sources.

Sources (see train/README.md for licences and attribution):
  shared   ../shared/data/speech/ (FLAC and Ogg Opus)  real speech, 1,700+ speakers
  asterisk asterisk-core-sounds-{en,es,fr,it,ru}-g722   five prompt voices
  fillets  fillets-ng-data-{cs,nl}        acted Czech and Dutch dialogue
  music    asterisk-moh-opsound-g722      music on hold (robustness only)

Every clip is decoded to 16 kHz mono, leading and trailing silence trimmed,
and its active loudness normalised to TARGET_DBFS.  The split is by speaker:
  shared   speakers hashed into validation (7 %, plus two VCTK and one
           LibriSpeech voice); the Picovoice clips have
           no speaker id, so they are split by file hash (documented caveat)
  asterisk the ru_RU voice is held out whole
  fillets  the non-fish characters of a fifth of the levels (per language)
           are held out; the two
           fish narrators appear in every level and stay in training
  music    one track is held out

Output (train/data/out/): {train,val}.pcm (int16, concatenated) and
{train,val}.tsv (source, speaker, offset, length, path), plus stats.json.
Usage: /usr/bin/python3 train/data/build_corpus.py [--shared DIR] [--out DIR]
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
from multiprocessing import Pool

import numpy as np

RATE = 16000
TARGET_DBFS = -23.0
FRAME = 320  # 20 ms gate frames

ASTERISK = "/usr/share/asterisk/sounds"
ASTERISK_VOICES = ["en_US_f_Allison", "es_MX_f_Allison", "fr_CA_f_June",
                   "it_IT_m_Carlo", "ru_RU_f_IvrvoiceRU"]
ASTERISK_VAL = {"ru_RU_f_IvrvoiceRU"}
FILLETS = "/usr/share/games/fillets-ng/sound"
MOH = "/usr/share/asterisk/moh"
# the small labelled sources would get no validation voice from the hash alone
SHARED_VAL = {"vctk:p226", "vctk:p273", "vctk:p229", "libri:8230", "libri:5703"}
# later folders that add clips of the same people: one identity, one split
SAME_PEOPLE = {"so762m": "so762", "vctk2": "vctk", "libri2": "libri"}
MOH_VAL = "reno_project-system.g722"


def stable_hash(text):
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16)


def decode_ffmpeg(path, fmt=None):
    cmd = ["ffmpeg", "-nostdin", "-v", "error"]
    if fmt:
        cmd += ["-f", fmt]
    cmd += ["-i", path, "-ac", "1", "-ar", str(RATE),
            "-af", "aresample=resampler=soxr", "-f", "s16le", "-"]
    raw = subprocess.run(cmd, check=True, capture_output=True).stdout
    return np.frombuffer(raw, dtype=np.int16).astype(np.float32) / 32768.0


def decode_flac(path):
    import soundfile
    data, rate = soundfile.read(path, dtype="float32", always_2d=True)
    if rate != RATE:
        return decode_ffmpeg(path)
    return data.mean(axis=1)


def trim_and_normalise(x):
    """Energy-gated trim of the ends, then active-loudness normalisation."""
    n = len(x) // FRAME
    if n < 10:
        return None
    frames = x[:n * FRAME].reshape(n, FRAME)
    energy_db = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
    gate = max(np.percentile(energy_db, 95) - 35,
               np.percentile(energy_db, 10) + 6, -60)
    active = np.nonzero(energy_db > gate)[0]
    if len(active) == 0:
        return None
    first = max(active[0] - 5, 0)
    last = min(active[-1] + 6, n)
    y = x[first * FRAME:last * FRAME]
    active_rms = np.sqrt(np.mean(frames[energy_db > gate] ** 2))
    y = y * (10 ** (TARGET_DBFS / 20) / max(active_rms, 1e-6))
    peak = np.max(np.abs(y))
    if peak > 0.99:
        y *= 0.99 / peak
    if len(y) < RATE // 2:
        return None
    return y


def voice_group(gender, age):
    """'m'/'f' for adults, 'child' under 16, '' when unlabelled: used for
    sampling weights and the per-gender validation figures."""
    if age.isdigit() and int(age) < 16:
        return "child"
    return gender if gender in ("m", "f") else ""


def list_items(shared):
    items = []  # (source, speaker, split, path, decoder, voice group)
    with open(os.path.join(shared, "manifest.tsv")) as f:
        header = f.readline().rstrip("\n").split("\t")
        rows = [dict(zip(header, line.rstrip("\n").split("\t"))) for line in f]
    # unlabelled folders (vctk/, libri/) get the label their people carry elsewhere
    labels = {}
    for row in rows:
        person = SAME_PEOPLE.get(row["source"], row["source"]) + ":" + row["speaker"]
        if row.get("gender"):
            labels[person] = (row["gender"], row.get("age", ""))
    for row in rows:
        spk = SAME_PEOPLE.get(row["source"], row["source"]) + ":" + row["speaker"]
        key = spk if row["speaker"] != "unk" else row["file"]
        held = stable_hash(key) % 100 < 7 or spk in SHARED_VAL
        split = "val" if held else "train"
        gender, age = labels.get(spk, ("", ""))
        if row.get("gender"):
            gender, age = row["gender"], row.get("age", "")
        items.append(("shared/" + row["source"], spk, split,
                      os.path.join(shared, row["file"]), "flac", voice_group(gender, age)))
    for voice in ASTERISK_VOICES:
        root = os.path.join(ASTERISK, voice)
        split = "val" if voice in ASTERISK_VAL else "train"
        for dirpath, _, files in os.walk(root):
            for name in sorted(files):
                if name.endswith(".g722"):
                    items.append(("asterisk", voice, split,
                                  os.path.join(dirpath, name), "g722", voice.split("_")[2]))
    for level in sorted(os.listdir(FILLETS)):
        for lang in ("cs", "nl"):
            root = os.path.join(FILLETS, level, lang)
            if not os.path.isdir(root):
                continue
            for name in sorted(os.listdir(root)):
                if not name.endswith(".ogg"):
                    continue
                parts = name.split("-")
                who = parts[1] if len(parts) > 2 else "x"
                fish = who in ("m", "v")
                speaker = f"{lang}:{who}" if fish else f"{lang}:{level}:{who}"
                held = (not fish) and stable_hash(level + lang) % 5 == 0
                items.append(("fillets/" + lang, speaker,
                              "val" if held else "train",
                              os.path.join(root, name), "ogg", ""))
    if os.path.isdir(MOH):
        for name in sorted(os.listdir(MOH)):
            if name.endswith(".g722"):
                items.append(("music", name, "val" if name == MOH_VAL else "train",
                              os.path.join(MOH, name), "g722", ""))
    return items


def process(item):
    source, speaker, split, path, kind, _ = item
    try:
        if kind == "flac":
            x = decode_flac(path)
        elif kind == "g722":
            x = decode_ffmpeg(path, "g722")
        else:
            x = decode_ffmpeg(path)
    except Exception as exc:  # a broken source file is reported, not fatal
        print(f"skip {path}: {exc}", file=sys.stderr)
        return None
    y = trim_and_normalise(x)
    if y is None:
        return None
    return item, np.clip(np.round(y * 32767), -32768, 32767).astype(np.int16)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", default=os.path.normpath(
        os.path.join(here, "../../../shared/data/speech")))
    parser.add_argument("--out", default=os.path.join(here, "out"))
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    items = list_items(args.shared)
    print(f"{len(items)} source files", file=sys.stderr)
    stats = {}
    outs = {s: (open(os.path.join(args.out, s + ".pcm.tmp"), "wb"),
                open(os.path.join(args.out, s + ".tsv.tmp"), "w"), [0])
            for s in ("train", "val")}
    digest = hashlib.sha256()
    with Pool(args.jobs) as pool:
        for result in pool.imap(process, items, chunksize=8):
            if result is None:
                continue
            (source, speaker, split, path, _, group), pcm = result
            pcm_file, tsv, offset = outs[split]
            pcm_file.write(pcm.tobytes())
            digest.update(pcm.tobytes())
            tsv.write(f"{source}\t{speaker}\t{offset[0]}\t{len(pcm)}\t{path}\t{group}\n")
            offset[0] += len(pcm)
            st = stats.setdefault(source, {}).setdefault(
                split, {"seconds": 0.0, "files": 0, "voices": set(), "groups": {}})
            st["seconds"] += len(pcm) / RATE
            st["groups"][group or "?"] = st["groups"].get(group or "?", 0) + len(pcm) / RATE
            st["files"] += 1
            st["voices"].add(speaker)
    for split, (pcm_file, tsv, _) in outs.items():
        pcm_file.close()
        tsv.close()
        for ext in ("pcm", "tsv"):
            os.replace(os.path.join(args.out, f"{split}.{ext}.tmp"),
                       os.path.join(args.out, f"{split}.{ext}"))
    table = {src: {sp: {"hours": round(v["seconds"] / 3600, 3), "files": v["files"],
                        "voices": len(v["voices"]),
                        "hours_by_voice": {g: round(t / 3600, 3) for g, t in sorted(v["groups"].items())}}
                   for sp, v in d.items()}
             for src, d in sorted(stats.items())}
    summary = {"sha256": digest.hexdigest(), "sources": table}
    with open(os.path.join(args.out, "stats.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
