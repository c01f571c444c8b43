/* Reader of the plain-text fixtures in spec/fixtures/torch*: lines "name count v1 ... v_count",
 * '#' lines are comments. Shared by the C tests that compare against PyTorch. */
#ifndef COLLAPSE_TESTS_FIXTURE_H
#define COLLAPSE_TESTS_FIXTURE_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define FX_MAX 160
typedef struct { char name[64]; int count; double *v; } fx_array;
typedef struct { fx_array a[FX_MAX]; int n; } fixture;

/* Reads every array of the file at path (relative to the repository root). 0 on failure. */
static int fixture_load(fixture *fx, const char *path) {
    FILE *f = fopen(path, "r");
    fx->n = 0;
    if (!f) {
        fprintf(stderr, "cannot open %s (run the tests from the repository root)\n", path);
        return 0;
    }
    char word[64];
    while (fscanf(f, " %63s", word) == 1) {
        if (word[0] == '#') {
            int ch;
            while ((ch = fgetc(f)) != EOF && ch != '\n') {}
            continue;
        }
        fx_array *a = &fx->a[fx->n];
        if (fx->n == FX_MAX || fscanf(f, "%d", &a->count) != 1 || a->count < 0) break;
        strcpy(a->name, word);
        a->v = malloc((size_t)(a->count ? a->count : 1) * sizeof(double));
        for (int i = 0; i < a->count; i++)
            if (fscanf(f, "%lf", &a->v[i]) != 1) {
                fclose(f);
                return 0;
            }
        fx->n++;
    }
    int ok = feof(f);
    fclose(f);
    return ok;
}

/* The array called name, which must hold count values (count < 0: any); a failed CHECK if not. */
static const double *fx_get(const fixture *fx, const char *name, int count) {
    for (int i = 0; i < fx->n; i++)
        if (!strcmp(fx->a[i].name, name)) {
            if (count >= 0 && fx->a[i].count != count) {
                fprintf(stderr, "fixture %s has %d values, expected %d\n", name, fx->a[i].count, count);
                CHECK(0);
                return NULL;
            }
            return fx->a[i].v;
        }
    fprintf(stderr, "fixture %s missing\n", name);
    CHECK(0);
    return NULL;
}

static void fixture_free(fixture *fx) {
    for (int i = 0; i < fx->n; i++) free(fx->a[i].v);
    fx->n = 0;
}
#endif
