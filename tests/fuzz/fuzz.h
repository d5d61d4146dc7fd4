/* fuzz.h -- what the libFuzzer harnesses share: the entry points' prototypes, a temporary
 * folder that lives as long as the fuzzing process, and splitting an input in two.
 *
 * A harness is one C file defining LLVMFuzzerTestOneInput (and LLVMFuzzerInitialize when it
 * needs a cache or folders). It must never exit on bad input: a crash, a sanitizer report, a
 * leak or a timeout is what the fuzzer looks for. A setup failure (no temporary folder, a cache
 * that does not open) aborts with a message, since nothing could be tested. */
#ifndef ASIDE_FUZZ_H
#define ASIDE_FUZZ_H

#include <ftw.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline void fuzz_die(const char *what)
{
    fprintf(stderr, "fuzz: setup failed: %s\n", what);
    abort();
}

static inline int fuzz_remove_one(const char *path, const struct stat *sb, int flag,
                                  struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Remove path and everything under it. */
static inline void fuzz_remove_tree(const char *path)
{
    nftw(path, fuzz_remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static char fuzz_root[PATH_MAX];

static inline void fuzz_remove_root(void) { fuzz_remove_tree(fuzz_root); }

/* A new temporary folder under TMPDIR, removed when the process exits normally. */
static inline const char *fuzz_temp_root(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(fuzz_root, sizeof fuzz_root, "%s/aside-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(fuzz_root))
        fuzz_die("mkdtemp");
    atexit(fuzz_remove_root);
    return fuzz_root;
}

/* fuzz_root/name, written to out (size bytes), created as a folder. */
static inline void fuzz_make_dir(const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", fuzz_root, name);
    if (mkdir(out, 0755) != 0)
        fuzz_die(out);
}

/* Split data at the first sep: the part before it (NUL-terminated, malloc'd) in *head, the rest
 * after it (malloc'd, NUL-terminated, *tail_len bytes) in *tail. Without sep, all of data is the
 * head and the tail is empty. False when out of memory. */
static inline int fuzz_split(const uint8_t *data, size_t size, char sep, char **head,
                             size_t *head_len, char **tail, size_t *tail_len)
{
    const uint8_t *at = memchr(data, sep, size);
    size_t h = at ? (size_t)(at - data) : size;
    size_t t = at ? size - h - 1 : 0;
    *head = malloc(h + 1);
    *tail = malloc(t + 1);
    if (!*head || !*tail) {
        free(*head);
        free(*tail);
        return 0;
    }
    memcpy(*head, data, h);
    (*head)[h] = '\0';
    if (t)
        memcpy(*tail, at + 1, t);
    (*tail)[t] = '\0';
    *head_len = h;
    *tail_len = t;
    return 1;
}

#endif
