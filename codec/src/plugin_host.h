/* Plugin host (private to libtokvox): find, open and check plugins.
 * Search order and naming are documented in tokvox/plugin.h. */
#ifndef TOKVOX_PLUGIN_HOST_H
#define TOKVOX_PLUGIN_HOST_H

#include <limits.h>
#include <stddef.h>

#include "tokvox/plugin.h"

typedef struct tk_plugin {
    void *handle;                          /* dlopen handle */
    const tokvox_plugin_descriptor *desc;
    char path[PATH_MAX];
} tk_plugin;

/* A plugin name is 1..31 of [a-z0-9_]: it can never name a path. */
int tk_plugin_name_ok(const char *name);
/* Open path and check its descriptor (ABI, size, kind tables). */
int tk_plugin_open(const char *path, tk_plugin *out, char *detail, size_t detail_size);
/* Find tokvox_NAME.so in the search folders and open it; kind must match. */
int tk_plugin_load(const char *name, int kind, tk_plugin *out, char *detail, size_t detail_size);
void tk_plugin_close(tk_plugin *p);

/* The search folders, in order; returns how many were written. */
size_t tk_plugin_folders(char folders[][PATH_MAX], size_t max);
/* 1 when this library runs from its build tree (not installed). */
int tk_running_uninstalled(void);

#endif
