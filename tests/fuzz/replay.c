/* SPDX-License-Identifier: MIT */
/*
 * Without libFuzzer (any compiler): feed every file named on the command
 * line, or found in a directory named there, to the target's
 * LLVMFuzzerTestOneInput once.  This is how ctest runs the committed corpus
 * (tests/fuzz/corpus/TARGET/) and how a crash file is replayed under a
 * debugger.  An invariant that breaks aborts, naming the input first.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
        FILE *f = fopen(path, "rb");
        uint8_t *buf = NULL;
        long len;

        if (!f) {
                perror(path);
                return -1;
        }
        if (fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
                perror(path);
                fclose(f);
                return -1;
        }
        /* An exact copy on the heap, so that ASan sees a read past its end. */
        buf = malloc(len ? (size_t)len : 1);
        if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
                fprintf(stderr, "%s: cannot read\n", path);
                free(buf);
                fclose(f);
                return -1;
        }
        fclose(f);
        fprintf(stderr, "replay %s (%ld bytes)\n", path, len);
        LLVMFuzzerTestOneInput(buf, (size_t)len);
        free(buf);
        return 0;
}

static int cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The files of a directory, in name order (the same order every run). */
static int run_dir(const char *path, int *count)
{
        DIR *d = opendir(path);
        struct dirent *e;
        char **names = NULL;
        size_t n = 0, cap = 0, i;
        int ret = 0;

        if (!d) {
                perror(path);
                return -1;
        }
        while ((e = readdir(d))) {
                if (e->d_name[0] == '.')
                        continue;
                if (n == cap) {
                        char **v = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof(*v));

                        if (!v)
                                abort();
                        names = v;
                }
                if (!(names[n] = malloc(strlen(path) + strlen(e->d_name) + 2)))
                        abort();
                sprintf(names[n++], "%s/%s", path, e->d_name);
        }
        closedir(d);
        qsort(names, n, sizeof(*names), cmp);
        for (i = 0; i < n; i++) {
                if (run_file(names[i]))
                        ret = -1;
                else
                        (*count)++;
                free(names[i]);
        }
        free(names);
        return ret;
}

int main(int argc, char **argv)
{
        int i, count = 0, bad = 0;

        if (argc < 2) {
                fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
                return 2;
        }
        for (i = 1; i < argc; i++) {
                struct stat st;

                if (stat(argv[i], &st)) {
                        perror(argv[i]);
                        bad = 1;
                } else if (S_ISDIR(st.st_mode)) {
                        bad |= run_dir(argv[i], &count) != 0;
                } else if (run_file(argv[i])) {
                        bad = 1;
                } else {
                        count++;
                }
        }
        fprintf(stderr, "%s: %d inputs replayed\n", argv[0], count);
        /* An empty corpus tests nothing: that is a failure too. */
        return bad || count == 0;
}
