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

#include "tokvox/tokvox.h"

#ifndef TOKVOX_BUILD_PLUGIN_DIR
#define TOKVOX_BUILD_PLUGIN_DIR ""
#endif
#ifndef TOKVOX_PLUGIN_DIR
#define TOKVOX_PLUGIN_DIR "/usr/local/lib/tokvox/plugins"
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
    return add_folder(folders, n, max, TOKVOX_PLUGIN_DIR, strlen(TOKVOX_PLUGIN_DIR));
}

static int fail(char *detail, size_t size, int error, const char *fmt, const char *a,
                const char *b)
{
    if (detail && size)
        snprintf(detail, size, fmt, a, b);
    return error;
}

static int check_descriptor(const tokvox_plugin_descriptor *d, const char *path, char *detail,
                            size_t size)
{
    char versions[96];
    if (d->abi_major != TOKVOX_PLUGIN_ABI_MAJOR || d->abi_minor > TOKVOX_PLUGIN_ABI_MINOR) {
        snprintf(versions, sizeof versions, "plugin ABI %u.%u, host ABI %d.%d", d->abi_major,
                 d->abi_minor, TOKVOX_PLUGIN_ABI_MAJOR, TOKVOX_PLUGIN_ABI_MINOR);
        return fail(detail, size, TOKVOX_ERR_PLUGIN_ABI, "%s: incompatible plugin (%s)", path,
                    versions);
    }
    if (d->size < sizeof(tokvox_plugin_descriptor) || !d->name || !tk_plugin_name_ok(d->name))
        return fail(detail, size, TOKVOX_ERR_PLUGIN_INVALID, "%s: %s", path,
                    "malformed plugin descriptor");
    int ok = (d->kind == TOKVOX_PLUGIN_QUANTIZER && d->quantizer && d->quantizer->create &&
              d->quantizer->destroy && d->quantizer->layout && d->quantizer->encode &&
              d->quantizer->decode) ||
             (d->kind == TOKVOX_PLUGIN_MODEL && d->model && d->model->create &&
              d->model->destroy && d->model->layout && d->model->state_create &&
              d->model->state_reset && d->model->state_destroy && d->model->encode &&
              d->model->decode);
    if (!ok)
        return fail(detail, size, TOKVOX_ERR_PLUGIN_INVALID, "%s: %s", path,
                    "plugin descriptor has an unknown kind or missing functions");
    return TOKVOX_OK;
}

int tk_plugin_open(const char *path, tk_plugin *out, char *detail, size_t detail_size)
{
    memset(out, 0, sizeof *out);
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
    tokvox_plugin_entry_fn entry;
    void *sym = dlsym(handle, TOKVOX_PLUGIN_ENTRY_SYMBOL);
    memcpy(&entry, &sym, sizeof entry); /* object-to-function pointer, POSIX-style */
    const tokvox_plugin_descriptor *d = entry ? entry() : NULL;
    int err = d ? check_descriptor(d, path, detail, detail_size)
                : fail(detail, detail_size, TOKVOX_ERR_PLUGIN_INVALID,
                       "%s: not a tokvox plugin (no %s symbol)", path,
                       TOKVOX_PLUGIN_ENTRY_SYMBOL);
    if (err) {
        dlclose(handle);
        return err;
    }
    out->handle = handle;
    out->desc = d;
    snprintf(out->path, sizeof out->path, "%s", path);
    return TOKVOX_OK;
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
    char path[PATH_MAX + 64];
    char hidden[PATH_MAX + 64] = ""; /* a folder that could not be searched */
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/tokvox_%s.so", folders[i], name);
        if (access(path, F_OK) != 0) {
            /* Skipped like a missing folder, but the plugin may well be in
             * it: "not found" alone would send the user looking elsewhere. */
            if (errno != ENOENT && errno != ENOTDIR && !hidden[0])
                snprintf(hidden, sizeof hidden, "; %s: %s", folders[i], strerror(errno));
            continue;
        }
        int err = tk_plugin_open(path, out, detail, detail_size);
        if (err)
            return err;
        if (out->desc->kind != kind || strcmp(out->desc->name, name) != 0) {
            tk_plugin_close(out);
            return fail(detail, detail_size, TOKVOX_ERR_PLUGIN_INVALID,
                        "%s: plugin '%s' is of another kind or name than asked for", path,
                        name);
        }
        return TOKVOX_OK;
    }
    char searched[1024] = "";
    for (size_t i = 0; i < n; i++) {
        size_t used = strlen(searched);
        snprintf(searched + used, sizeof searched - used, "%s%s", i ? ":" : "", folders[i]);
    }
    if (detail && detail_size)
        snprintf(detail, detail_size, "plugin '%s' not found (searched %s%s; set TOKVOX_PLUGIN_PATH)",
                 name, searched, hidden);
    return TOKVOX_ERR_PLUGIN_NOT_FOUND;
}

void tk_plugin_close(tk_plugin *p)
{
    if (p && p->handle)
        dlclose(p->handle);
    if (p)
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
    char detail[1024] = "";
    tokvox_plugin_info info = {.path = path};
    info.error = tk_plugin_open(path, &p, detail, sizeof detail);
    if (info.error == TOKVOX_OK) {
        info.name = p.desc->name;
        info.version = p.desc->version;
        info.description = p.desc->description;
        info.kind = p.desc->kind;
        info.abi_major = p.desc->abi_major;
        info.abi_minor = p.desc->abi_minor;
    } else {
        info.detail = detail;
    }
    visit(ctx, &info);
    tk_plugin_close(&p);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
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
                tokvox_plugin_info info = {.path = folders[i], .error = TOKVOX_ERR_IO,
                                           .detail = detail};
                visit(ctx, &info);
            }
            continue;
        }
        size_t count = 0, cap = 0;
        char **names = NULL;
        for (struct dirent *e; (e = readdir(dir));) {
            size_t len = strlen(e->d_name);
            if (len < 11 || strncmp(e->d_name, "tokvox_", 7) || strcmp(e->d_name + len - 3, ".so"))
                continue;
            if (count == cap) {
                cap = cap ? cap * 2 : 16;
                char **grown = realloc(names, cap * sizeof *names);
                if (!grown)
                    break;
                names = grown;
            }
            names[count] = strdup(e->d_name);
            if (names[count])
                count++;
        }
        closedir(dir);
        qsort(names, count, sizeof *names, by_name);
        for (size_t j = 0; j < count; j++) {
            char path[2 * PATH_MAX];
            snprintf(path, sizeof path, "%s/%s", folders[i], names[j]);
            visit_file(path, visit, ctx);
            free(names[j]);
        }
        free(names);
    }
}
