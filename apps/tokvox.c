/* tokvox: the command-line front end.  One subcommand per file. */
#include <stdio.h>
#include <string.h>

#include "app.h"

static const struct command {
    const char *name;
    app_command_fn run;
    const char *summary;
} commands[] = {
    {"encode", cmd_encode, "audio file -> .tvx bitstream"},
    {"decode", cmd_decode, ".tvx bitstream -> audio file"},
    {"transcode", cmd_transcode, "audio -> codes -> audio in one pass, prints the bitrate"},
    {"info", cmd_info, "describe a model or a .tvx file"},
    {"plugins", cmd_plugins, "list the plugins found"},
    {"tokenize", cmd_tokenize, "audio corpus -> .npy speech tokens (parallel, resumable)"},
    {"detokenize", cmd_detokenize, "token .npy -> audio file"},
    {"tokstats", cmd_tokstats, "codebook usage of a tokenize output folder"},
    {"live", cmd_live, "microphone -> codec -> speaker, locally or over UDP"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: tokvox COMMAND [ARGS]   (tokvox COMMAND --help for details)\n\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nBitrates are in kbps, a step per codebook: the shipped model codes\n"
                 "0.5 to 4 kbps in steps of 0.5 kbps (--bitrate 2 = --codebooks 4; tokvox info).\n"
                 "\ntokvox %s.  The default model is used unless --model is given;\n"
                 "TOKVOX_MODEL and TOKVOX_PLUGIN_PATH override where models and plugins "
                 "are found.\n",
            tokvox_version());
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("tokvox %s\n", tokvox_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "tokvox: unknown command '%s' (see 'tokvox --help')\n", argv[1]);
    return 2;
}
