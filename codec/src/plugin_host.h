/* Plugin host (private to libtokvox): find, open and check plugin objects.
 * Search order, naming and the ABI rules are documented in tokvox/plugin.h.
 *
 * Every struct a plugin hands over is copied into a host-sized struct,
 * zero-filled past the size the plugin declares, so the rest of the library
 * reads plain structs: a field an older plugin lacks is NULL or 0. */
#ifndef TOKVOX_PLUGIN_HOST_H
#define TOKVOX_PLUGIN_HOST_H

#include <limits.h>
#include <stddef.h>

#include "tokvox/plugin.h"

/* One plugin of a loaded object: its descriptor and API table, normalised. */
typedef struct tk_plugin {
    void *handle;                          /* dlopen handle */
    int initialised;                       /* entry.init succeeded: deinit owed */
    tokvox_plugin_entry entry;             /* normalised copy */
    tokvox_plugin_descriptor desc;         /* normalised copy; desc.api points to api */
    union {
        tokvox_quantizer_api quantizer;
        tokvox_model_api model;
    } api;                                 /* normalised copy of the kind's table */
    tokvox_host host;                      /* what this object was given */
    char path[PATH_MAX];
} tk_plugin;

/* Copy a plugin's struct src (its uint32_t size at size_offset) into the
 * host's dst of dst_size bytes: what both know is copied, the rest zeroed,
 * and dst's size field says how much that is.  -1 when the plugin's size is below min_size (the oldest layout read). */
int tk_copy_sized(void *dst, size_t dst_size, const void *src, size_t size_offset,
                  size_t min_size);

/* A plugin name is 1..31 of [a-z0-9_]: it can never name a path. */
int tk_plugin_name_ok(const char *name);

/* dlopen path, check its entry, init it.  The object's plugins are then
 * read with tk_plugin_count / tk_plugin_select.  p must not move while open
 * (p->host points into it). */
int tk_plugin_open(const char *path, tk_plugin *p, char *detail, size_t detail_size);
/* Number of plugins in an opened object. */
uint32_t tk_plugin_count(const tk_plugin *p);
/* Make plugin `index` of the object the current one (desc, api), checked:
 * name, kind and the kind's required functions. */
int tk_plugin_select(tk_plugin *p, uint32_t index, char *detail, size_t detail_size);

/* Find the plugin called name (of the given kind) in the search folders:
 * tokvox_NAME.so first, then every tokvox_*.so, folder by folder. */
int tk_plugin_load(const char *name, int kind, tk_plugin *out, char *detail, size_t detail_size);
void tk_plugin_close(tk_plugin *p);

/* The search folders, in order; returns how many were written. */
size_t tk_plugin_folders(char folders[][PATH_MAX], size_t max);
/* 1 when this library runs from its build tree (not installed). */
int tk_running_uninstalled(void);
/* dir_of_library/rel: a folder of the installed tree found from where this
 * library itself lies (dladdr), so a moved prefix still finds it.  0 when
 * rel is empty or the location is unknown. */
int tk_beside_library(const char *rel, char *out, size_t size);

#endif
