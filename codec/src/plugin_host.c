/* Plugin discovery and loading.  Trust rule: a plugin is only ever loaded
 * from the search folders, by a name that cannot contain a path. */
#define _GNU_SOURCE /* dladdr */
#include "plugin_host.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels.h"
#include "tokvox/tokvox.h"

#ifndef TOKVOX_BUILD_PLUGIN_DIR
#define TOKVOX_BUILD_PLUGIN_DIR ""
#endif
#ifndef TOKVOX_PLUGIN_DIR
#define TOKVOX_PLUGIN_DIR "/usr/local/lib/tokvox/plugins"
#endif
/* The plugin folder relative to the library's own folder (meson.build). */
#ifndef TOKVOX_REL_PLUGIN_DIR
#define TOKVOX_REL_PLUGIN_DIR ""
#endif

#define MAX_FOLDERS 16

int tk_plugin_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 31)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return 1;
}

int tk_running_uninstalled(void)
{
    /* The build folder's plugins are trusted only when this very library
     * (or the program it is linked into) lives in that build tree. */
    static const char build_plugins[] = TOKVOX_BUILD_PLUGIN_DIR;
    Dl_info info;
    if (!build_plugins[0] || !dladdr((void *)&tk_running_uninstalled, &info) || !info.dli_fname)
        return 0;
    char *self = realpath(info.dli_fname, NULL);
    if (!self)
        return 0;
    /* build root = plugin folder minus its last component */
    const char *slash = strrchr(build_plugins, '/');
    size_t root_len = slash ? (size_t)(slash - build_plugins) : 0;
    int inside = root_len > 0 && strncmp(self, build_plugins, root_len) == 0 &&
                 self[root_len] == '/';
    free(self);
    return inside;
}

int tk_beside_library(const char *rel, char *out, size_t size)
{
    Dl_info info;
    if (!rel || !rel[0] || !dladdr((void *)&tk_beside_library, &info) || !info.dli_fname)
        return 0;
    char *self = realpath(info.dli_fname, NULL);
    if (!self)
        return 0;
    char *slash = strrchr(self, '/');
    int n = slash ? snprintf(out, size, "%.*s/%s", (int)(slash - self), self, rel) : -1;
    free(self);
    if (n <= 0 || (size_t)n >= size)
        return 0;
    /* "lib/x86_64-linux-gnu/../../share" reads better as "share" in messages */
    char *clean = realpath(out, NULL);
    if (clean && strlen(clean) < size)
        memcpy(out, clean, strlen(clean) + 1);
    free(clean);
    return 1;
}

static size_t add_folder(char folders[][PATH_MAX], size_t n, size_t max, const char *dir,
                         size_t len)
{
    if (n >= max || len == 0 || len >= PATH_MAX)
        return n;
    memcpy(folders[n], dir, len);
    folders[n][len] = '\0';
    return n + 1;
}

size_t tk_plugin_folders(char folders[][PATH_MAX], size_t max)
{
    size_t n = 0;
    const char *env = getenv("TOKVOX_PLUGIN_PATH");
    while (env && *env) {
        const char *colon = strchr(env, ':');
        size_t len = colon ? (size_t)(colon - env) : strlen(env);
        n = add_folder(folders, n, max, env, len);
        env = colon ? colon + 1 : NULL;
    }
    if (tk_running_uninstalled())
        n = add_folder(folders, n, max, TOKVOX_BUILD_PLUGIN_DIR, strlen(TOKVOX_BUILD_PLUGIN_DIR));
    /* installed: beside the library first (a moved prefix), then where it was installed */
    char beside[PATH_MAX];
    if (!tk_running_uninstalled() && tk_beside_library(TOKVOX_REL_PLUGIN_DIR, beside, sizeof beside))
        n = add_folder(folders, n, max, beside, strlen(beside));
    return add_folder(folders, n, max, TOKVOX_PLUGIN_DIR, strlen(TOKVOX_PLUGIN_DIR));
}

static int fail(char *detail, size_t size, int error, const char *fmt, const char *a,
                const char *b)
{
    if (detail && size)
        snprintf(detail, size, fmt, a, b);
    return error;
}

/* ---- what the host offers ------------------------------------------------ */

static int debug_log(void)
{
    const char *v = getenv("TOKVOX_PLUGIN_LOG");
    return v && strcmp(v, "debug") == 0;
}

static void host_log(const tokvox_host *host, int level, const char *message)
{
    const tk_plugin *p = host ? host->host_data : NULL;
    if (!p || !message || (level < TOKVOX_LOG_WARNING && !debug_log()))
        return;
    static const char *const names[] = {"debug", "info", "warning", "error"};
    const char *what = level >= 0 && level <= TOKVOX_LOG_ERROR ? names[level] : "log";
    fprintf(stderr, "tokvox: plugin %s: %s: %s\n", p->path, what, message);
}

static const void *host_get_extension(const tokvox_host *host, const char *id)
{
    (void)host;
    if (id && strcmp(id, TOKVOX_EXT_KERNELS) == 0)
        return tk_kernels();
    return NULL;
}

/* ---- reading what a plugin hands over ------------------------------------ */

int tk_copy_sized(void *dst, size_t dst_size, const void *src, size_t size_offset,
                  size_t min_size)
{
    uint32_t size;
    memcpy(&size, (const char *)src + size_offset, sizeof size);
    if (size < min_size)
        return -1;
    memset(dst, 0, dst_size);
    uint32_t known = size < dst_size ? size : (uint32_t)dst_size;
    memcpy(dst, src, known);
    memcpy((char *)dst + size_offset, &known, sizeof known); /* what dst now holds */
    return 0;
}

#define END_OF(type, member) (offsetof(type, member) + sizeof(((type *)0)->member))

/* The 1.x entry was a function returning a descriptor that began with the
 * major and minor as two uint16_t: read them to say what the object is. */
static int refuse_abi1(void *handle, const char *path, char *detail, size_t size)
{
    void *sym = dlsym(handle, "tokvox_plugin_entry");
    if (!sym)
        return fail(detail, size, TOKVOX_ERR_PLUGIN_INVALID,
                    "%s: not a tokvox plugin (no %s symbol)", path, TOKVOX_PLUGIN_ENTRY_SYMBOL);
    const void *(*entry1)(void);
    memcpy(&entry1, &sym, sizeof entry1); /* object-to-function pointer, POSIX-style */
    const uint16_t *version = entry1();
    char why[192];
    snprintf(why, sizeof why,
             "plugin ABI %u.%u, host ABI %d.%d: ABI 1 plugins are no longer loaded (their "
             "entry has another shape); rebuild it against tokvox/plugin.h %d.x",
             version ? version[0] : 1u, version ? version[1] : 0u, TOKVOX_PLUGIN_ABI_MAJOR,
             TOKVOX_PLUGIN_ABI_MINOR, TOKVOX_PLUGIN_ABI_MAJOR);
    return fail(detail, size, TOKVOX_ERR_PLUGIN_ABI, "%s: incompatible plugin (%s)", path, why);
}

static int check_entry(tk_plugin *p, const tokvox_plugin_entry *e, char *detail, size_t size)
{
    if (e->abi_major != TOKVOX_PLUGIN_ABI_MAJOR) {
        char versions[96];
        snprintf(versions, sizeof versions, "plugin ABI %u.%u, host ABI %d.%d", e->abi_major,
                 e->abi_minor, TOKVOX_PLUGIN_ABI_MAJOR, TOKVOX_PLUGIN_ABI_MINOR);
        return fail(detail, size, TOKVOX_ERR_PLUGIN_ABI, "%s: incompatible plugin (%s)",
                    p->path, versions);
    }
    if (tk_copy_sized(&p->entry, sizeof p->entry, e, offsetof(tokvox_plugin_entry, size),
                   END_OF(tokvox_plugin_entry, plugin_get)) ||
        !p->entry.plugin_count || !p->entry.plugin_get)
        return fail(detail, size, TOKVOX_ERR_PLUGIN_INVALID, "%s: %s", p->path,
                    "malformed plugin entry (too small, or no factory)");
    return TOKVOX_OK;
}

int tk_plugin_open(const char *path, tk_plugin *p, char *detail, size_t detail_size)
{
    memset(p, 0, sizeof *p);
    snprintf(p->path, sizeof p->path, "%s", path);
    struct stat st;
    if (stat(path, &st) != 0)
        return fail(detail, detail_size, TOKVOX_ERR_PLUGIN_NOT_FOUND, "%s: %s", path,
                    strerror(errno));
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char *why = dlerror();
        return fail(detail, detail_size, TOKVOX_ERR_PLUGIN_INVALID, "%s: cannot load (%s)",
                    path, why ? why : "unknown dlopen error");
    }
    const tokvox_plugin_entry *e = dlsym(handle, TOKVOX_PLUGIN_ENTRY_SYMBOL);
    int err = e ? check_entry(p, e, detail, detail_size)
                : refuse_abi1(handle, path, detail, detail_size);
    p->host = (tokvox_host){sizeof(tokvox_host), TOKVOX_PLUGIN_ABI_MAJOR,
                            TOKVOX_PLUGIN_ABI_MINOR, "libtokvox", TOKVOX_VERSION, host_log,
                            host_get_extension, p};
    if (!err && p->entry.init && (err = p->entry.init(&p->host)) != TOKVOX_OK) {
        char code[16];
        snprintf(code, sizeof code, "%d", err);
        err = fail(detail, detail_size, TOKVOX_ERR_PLUGIN_INVALID,
                   "%s: the plugin's init refused to load (error %s)", path, code);
    }
    if (err) {
        dlclose(handle);
        p->handle = NULL;
        return err;
    }
    p->handle = handle;
    p->initialised = 1;
    return TOKVOX_OK;
}

uint32_t tk_plugin_count(const tk_plugin *p)
{
    return p && p->handle ? p->entry.plugin_count() : 0;
}

static int check_api(tk_plugin *p, const void *api)
{
    if (!api)
        return -1;
    if (p->desc.kind == TOKVOX_PLUGIN_QUANTIZER) {
        tokvox_quantizer_api *q = &p->api.quantizer;
        return tk_copy_sized(q, sizeof *q, api, 0, END_OF(tokvox_quantizer_api, decode)) ||
                       !q->create || !q->destroy || !q->layout || !q->encode || !q->decode
                   ? -1
                   : 0;
    }
    if (p->desc.kind == TOKVOX_PLUGIN_MODEL) {
        tokvox_model_api *m = &p->api.model;
        return tk_copy_sized(m, sizeof *m, api, 0, END_OF(tokvox_model_api, decode)) ||
                       !m->create || !m->destroy || !m->layout || !m->encoder_state_create ||
                       !m->decoder_state_create || !m->state_reset || !m->state_destroy ||
                       !m->encode || !m->decode
                   ? -1
                   : 0;
    }
    return -1;
}

int tk_plugin_select(tk_plugin *p, uint32_t index, char *detail, size_t detail_size)
{
    const tokvox_plugin_descriptor *d =
        index < tk_plugin_count(p) ? p->entry.plugin_get(index) : NULL;
    memset(&p->desc, 0, sizeof p->desc);
    memset(&p->api, 0, sizeof p->api);
    if (!d || tk_copy_sized(&p->desc, sizeof p->desc, d, 0, END_OF(tokvox_plugin_descriptor, api)) ||
        !tk_plugin_name_ok(p->desc.name)) {
        memset(&p->desc, 0, sizeof p->desc);
        return fail(detail, detail_size, TOKVOX_ERR_PLUGIN_INVALID, "%s: %s", p->path,
                    "malformed plugin descriptor");
    }
    if (check_api(p, d->api)) {
        char which[64];
        snprintf(which, sizeof which, "%s", p->desc.name);
        memset(&p->desc, 0, sizeof p->desc);
        return fail(detail, detail_size, TOKVOX_ERR_PLUGIN_INVALID,
                    "%s: plugin '%s' has an unknown kind or missing functions", p->path, which);
    }
    p->desc.api = &p->api;
    return TOKVOX_OK;
}

/* The plugin called name in the opened object p: 1 selected, 0 absent, or a
 * negative error (in detail) when it is there but unusable or of another kind. */
static int select_by_name(tk_plugin *p, const char *name, int kind, char *detail, size_t size)
{
    uint32_t n = tk_plugin_count(p);
    for (uint32_t i = 0; i < n; i++) {
        const tokvox_plugin_descriptor *d = p->entry.plugin_get(i);
        uint32_t dsize;
        if (!d)
            continue;
        memcpy(&dsize, d, sizeof dsize);
        if (dsize < END_OF(tokvox_plugin_descriptor, name) || !d->name || strcmp(d->name, name))
            continue;
        int err = tk_plugin_select(p, i, detail, size);
        if (err)
            return err;
        if (p->desc.kind != kind)
            return fail(detail, size, TOKVOX_ERR_PLUGIN_INVALID,
                        "%s: plugin '%s' is of another kind than asked for", p->path, name);
        return 1;
    }
    return 0;
}

static int bundle_name(const char *file)
{
    size_t len = strlen(file);
    return len >= 11 && strncmp(file, "tokvox_", 7) == 0 && strcmp(file + len - 3, ".so") == 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The tokvox_*.so files of folder, sorted; NULL (and *count 0) if none. */
static char **list_bundles(const char *folder, size_t *count)
{
    *count = 0;
    DIR *dir = opendir(folder);
    if (!dir)
        return NULL;
    size_t cap = 0;
    char **names = NULL;
    for (struct dirent *e; (e = readdir(dir));) {
        if (!bundle_name(e->d_name))
            continue;
        if (*count == cap) {
            cap = cap ? cap * 2 : 16;
            char **grown = realloc(names, cap * sizeof *names);
            if (!grown)
                break;
            names = grown;
        }
        names[*count] = strdup(e->d_name);
        if (names[*count])
            ++*count;
    }
    closedir(dir);
    if (*count)
        qsort(names, *count, sizeof *names, by_name);
    return names;
}

static void free_list(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

/* Look for name in folder: tokvox_NAME.so first, then the other objects.
 * 1 found (selected in out), 0 not found, or a negative error when an
 * object holds it but it is unusable or of another kind.  An object that
 * does not load is skipped, so a stale file beside the object that now
 * holds the plugin does not shadow it; but a tokvox_NAME.so that does not
 * load is kept in own_err and own_detail, the answer when nothing else in
 * its folder has the plugin (it is not silently passed over for a later
 * folder). */
static int load_from_folder(const char *folder, const char *name, int kind, tk_plugin *out,
                            int *skipped, int *own_err, char *own_detail, size_t own_size,
                            char *detail, size_t size)
{
    char own[64], path[PATH_MAX + 64];
    snprintf(own, sizeof own, "tokvox_%s.so", name);
    size_t count;
    char **names = list_bundles(folder, &count);
    /* tokvox_NAME.so first, then the rest in name order */
    for (size_t i = 0; i < count; i++)
        if (strcmp(names[i], own) == 0) {
            char *first = names[i];
            memmove(names + 1, names, i * sizeof *names);
            names[0] = first;
        }
    int found = 0;
    for (size_t i = 0; i < count && !found; i++) {
        snprintf(path, sizeof path, "%s/%s", folder, names[i]);
        char why[1024];
        int err = tk_plugin_open(path, out, why, sizeof why);
        if (err) {
            if (strcmp(names[i], own) == 0 && !*own_err) {
                *own_err = err;
                snprintf(own_detail, own_size, "%s", why);
            } else {
                ++*skipped;
            }
            continue;
        }
        found = select_by_name(out, name, kind, detail, size);
        if (found <= 0)
            tk_plugin_close(out);
    }
    free_list(names, count);
    return found;
}

int tk_plugin_load(const char *name, int kind, tk_plugin *out, char *detail, size_t detail_size)
{
    memset(out, 0, sizeof *out);
    if (!tk_plugin_name_ok(name))
        return fail(detail, detail_size, TOKVOX_ERR_PLUGIN_NOT_FOUND,
                    "plugin name '%s' is not allowed%s (only [a-z0-9_], no paths)",
                    name ? name : "(null)", "");
    char folders[MAX_FOLDERS][PATH_MAX];
    size_t n = tk_plugin_folders(folders, MAX_FOLDERS);
    char hidden[PATH_MAX + 64] = ""; /* a folder that could not be searched */
    char own_detail[1024] = "";
    int skipped = 0, own_err = 0;
    for (size_t i = 0; i < n; i++) {
        if (access(folders[i], R_OK | X_OK) != 0) {
            /* Skipped like a missing folder, but the plugin may well be in
             * it: "not found" alone would send the user looking elsewhere. */
            if (errno != ENOENT && errno != ENOTDIR && !hidden[0])
                snprintf(hidden, sizeof hidden, "; %s: %s", folders[i], strerror(errno));
            continue;
        }
        int found = load_from_folder(folders[i], name, kind, out, &skipped, &own_err, own_detail,
                                     sizeof own_detail, detail, detail_size);
        if (found == 1)
            return TOKVOX_OK;
        if (found < 0)
            return found;
        if (own_err)
            return fail(detail, detail_size, own_err, "%s%s", own_detail, "");
    }
    char searched[1024] = "";
    for (size_t i = 0; i < n; i++) {
        size_t used = strlen(searched);
        snprintf(searched + used, sizeof searched - used, "%s%s", i ? ":" : "", folders[i]);
    }
    char unusable[96] = "";
    if (skipped)
        snprintf(unusable, sizeof unusable, "; %d unusable object%s skipped, see 'tokvox plugins'",
                 skipped, skipped == 1 ? "" : "s");
    if (detail && detail_size)
        snprintf(detail, detail_size,
                 "plugin '%s' not found (searched %s%s%s; set TOKVOX_PLUGIN_PATH)", name,
                 searched, hidden, unusable);
    return TOKVOX_ERR_PLUGIN_NOT_FOUND;
}

void tk_plugin_close(tk_plugin *p)
{
    if (!p)
        return;
    if (p->handle && p->initialised && p->entry.deinit)
        p->entry.deinit();
    if (p->handle)
        dlclose(p->handle);
    memset(p, 0, sizeof *p);
}

void tokvox_plugin_search_path(char *buf, size_t size)
{
    char folders[MAX_FOLDERS][PATH_MAX];
    size_t n = tk_plugin_folders(folders, MAX_FOLDERS);
    if (!buf || !size)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t used = strlen(buf);
        snprintf(buf + used, size - used, "%s%s", i ? ":" : "", folders[i]);
    }
}

static void visit_file(const char *path, tokvox_plugin_visitor visit, void *ctx)
{
    tk_plugin p;
    char detail[PATH_MAX + 1024] = "";
    tokvox_plugin_info info = {.size = sizeof info, .path = path};
    info.error = tk_plugin_open(path, &p, detail, sizeof detail);
    uint32_t n = info.error ? 0 : tk_plugin_count(&p);
    if (info.error == TOKVOX_OK && n == 0) {
        info.error = TOKVOX_ERR_PLUGIN_INVALID;
        snprintf(detail, sizeof detail, "%s: the object holds no plugins", p.path);
    }
    if (info.error) {
        info.detail = detail;
        visit(ctx, &info);
    }
    for (uint32_t i = 0; i < n; i++) {
        info = (tokvox_plugin_info){.size = sizeof info, .path = path};
        info.error = tk_plugin_select(&p, i, detail, sizeof detail);
        if (info.error == TOKVOX_OK) {
            info.name = p.desc.name;
            info.version = p.desc.version ? p.desc.version : "?";
            info.description = p.desc.description ? p.desc.description : "";
            info.kind = p.desc.kind;
            info.abi_major = p.entry.abi_major;
            info.abi_minor = p.entry.abi_minor;
        } else {
            info.detail = detail;
        }
        visit(ctx, &info);
    }
    tk_plugin_close(&p);
}

void tokvox_plugins_scan(tokvox_plugin_visitor visit, void *ctx)
{
    char folders[MAX_FOLDERS][PATH_MAX];
    size_t n = tk_plugin_folders(folders, MAX_FOLDERS);
    for (size_t i = 0; i < n; i++) {
        DIR *dir = opendir(folders[i]);
        if (!dir) {
            /* An absent folder is normal (the installed one often is); one
             * that cannot be read hides its plugins, so it is reported. */
            if (errno != ENOENT && errno != ENOTDIR) {
                char detail[PATH_MAX + 128];
                snprintf(detail, sizeof detail, "%s: cannot list the plugin folder (%s)",
                         folders[i], strerror(errno));
                tokvox_plugin_info info = {.size = sizeof info, .path = folders[i],
                                           .error = TOKVOX_ERR_IO,
                                           .detail = detail};
                visit(ctx, &info);
            }
            continue;
        }
        closedir(dir);
        size_t count;
        char **names = list_bundles(folders[i], &count);
        for (size_t j = 0; j < count; j++) {
            char path[2 * PATH_MAX];
            snprintf(path, sizeof path, "%s/%s", folders[i], names[j]);
            visit_file(path, visit, ctx);
        }
        free_list(names, count);
    }
}
