/* A shared object without the entry symbol. */
#include "tokvox/plugin.h"

TOKVOX_PLUGIN_EXPORT int tokvox_something_else(void);
int tokvox_something_else(void) { return 42; }
