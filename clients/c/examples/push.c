/*
 * infranaut-c-push: reads a CSV file (a header row, then one row per line) and pushes it to a
 * node in batches, with libinfranaut-client.
 *
 *   infranaut-c-push --node tcp://127.0.0.1:7400 --model M --file rows.csv
 *                    [--batch-size 1000] [--id-column C] [--time-column C]
 *                    [--prediction-column C] [--key-prefix K]
 *
 * A column whose non-empty cells all read as numbers goes as doubles (empty: missing), any other
 * as strings (empty: missing). The id column becomes the prediction ids, the time column (Unix
 * milliseconds) the event times. Quoted fields ("a, b", "say ""hi""") are read; a field may not
 * span lines. Batch i is sent with the key PREFIX-i, so running the same command again with the
 * same --key-prefix applies nothing twice.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "infranaut/client.h"

enum { MAX_LINE = 1 << 20, MAX_COLUMNS = 1000 };

typedef struct {
    char **cells; /* rows × columns, row-major; NULL = empty */
    size_t rows, columns, capacity;
} table;

/* Splits one line into at most MAX_COLUMNS fields (copies); returns the count or -1. */
static int split(const char *line, char **fields) {
    int count = 0;
    const char *p = line;
    for (;;) {
        if (count == MAX_COLUMNS) return -1;
        size_t cap = strlen(p) + 1, n = 0;
        char *field = malloc(cap);
        if (field == NULL) return -1;
        if (*p == '"') {
            p++;
            for (;;) {
                if (*p == '\0') break;
                if (*p == '"' && p[1] == '"') {
                    field[n++] = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    field[n++] = *p++;
                }
            }
            while (*p != ',' && *p != '\0') p++;
        } else {
            while (*p != ',' && *p != '\0' && *p != '\r' && *p != '\n') field[n++] = *p++;
            while (*p != ',' && *p != '\0') p++;
        }
        field[n] = '\0';
        fields[count++] = field;
        if (*p != ',') break;
        p++;
    }
    return count;
}

static void free_table(table *t) {
    for (size_t i = 0; i < t->rows * t->columns; i++) free(t->cells[i]);
    free(t->cells);
}

static int is_number(const char *text, double *value) {
    if (text == NULL || *text == '\0') return 0;
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || errno == ERANGE) return 0;
    *value = v;
    return 1;
}

static int column_index(char **header, size_t columns, const char *name) {
    if (name == NULL) return -1;
    for (size_t c = 0; c < columns; c++)
        if (strcmp(header[c], name) == 0) return (int)c;
    return -2;
}

/* Pushes rows [from, to) as one batch. */
static int push(infranaut_client *client, const char *model, char **header, const table *t, size_t from, size_t to,
                int id_col, int time_col, const char *prediction, const char *key, uint64_t *accepted,
                infranaut_error *err) {
    size_t rows = to - from;
    infranaut_batch *batch = NULL;
    int rv = infranaut_batch_new(&batch, model, rows, err);
    if (rv != INFRANAUT_OK) return rv;
    double *numbers = malloc(rows * sizeof *numbers);
    const char **texts = malloc(rows * sizeof *texts);
    int64_t *times = malloc(rows * sizeof *times);
    if (numbers == NULL || texts == NULL || times == NULL) {
        rv = INFRANAUT_E_NOMEM;
        snprintf(err->message, sizeof err->message, "out of memory");
        err->code = rv;
    }
    for (size_t c = 0; rv == INFRANAUT_OK && c < t->columns; c++) {
        int numeric = 1, any = 0;
        for (size_t r = from; r < to; r++) {
            const char *cell = t->cells[r * t->columns + c];
            double v;
            if (cell == NULL || *cell == '\0') {
                numbers[r - from] = NAN;
                texts[r - from] = NULL;
                continue;
            }
            any = 1;
            texts[r - from] = cell;
            if (is_number(cell, &v)) {
                numbers[r - from] = v;
            } else {
                numeric = 0;
            }
        }
        if ((int)c == id_col) {
            rv = infranaut_batch_set_ids(batch, texts, err);
        } else if ((int)c == time_col) {
            for (size_t r = 0; r < rows && rv == INFRANAUT_OK; r++) {
                if (isnan(numbers[r]) || !numeric) {
                    rv = INFRANAUT_E_ARGUMENT;
                    err->code = rv;
                    snprintf(err->message, sizeof err->message, "row %zu: the time column needs Unix milliseconds",
                             from + r + 2);
                }
                times[r] = (int64_t)numbers[r];
            }
            if (rv == INFRANAUT_OK) rv = infranaut_batch_set_event_times(batch, times, err);
        } else if (numeric && any) {
            rv = infranaut_batch_add_doubles(batch, header[c], numbers, err);
        } else {
            rv = infranaut_batch_add_strings(batch, header[c], texts, err);
        }
    }
    if (rv == INFRANAUT_OK && prediction != NULL) rv = infranaut_batch_set_roles(batch, prediction, NULL, NULL, 0, err);
    if (rv == INFRANAUT_OK) {
        infranaut_ingest_result result;
        rv = infranaut_ingest(client, batch, key, &result, err);
        if (rv == INFRANAUT_OK) *accepted += result.rows_accepted;
    }
    free(numbers);
    free(texts);
    free(times);
    infranaut_batch_free(batch);
    return rv;
}

int main(int argc, char **argv) {
    const char *node = "tcp://127.0.0.1:7400", *model = NULL, *file = NULL, *id = NULL, *time_name = NULL;
    const char *prediction = NULL, *prefix = NULL;
    long batch_size = 1000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--node") == 0) node = argv[i + 1];
        else if (strcmp(argv[i], "--model") == 0) model = argv[i + 1];
        else if (strcmp(argv[i], "--file") == 0) file = argv[i + 1];
        else if (strcmp(argv[i], "--batch-size") == 0) batch_size = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--id-column") == 0) id = argv[i + 1];
        else if (strcmp(argv[i], "--time-column") == 0) time_name = argv[i + 1];
        else if (strcmp(argv[i], "--prediction-column") == 0) prediction = argv[i + 1];
        else if (strcmp(argv[i], "--key-prefix") == 0) prefix = argv[i + 1];
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (model == NULL || file == NULL || batch_size < 1 || batch_size > 100000) {
        fprintf(stderr, "usage: infranaut-c-push --node ADDR --model M --file F.csv [--batch-size 1..100000] "
                        "[--id-column C] [--time-column C] [--prediction-column C] [--key-prefix K]\n");
        return 2;
    }
    FILE *in = fopen(file, "r");
    if (in == NULL) {
        fprintf(stderr, "cannot read %s: %s\n", file, strerror(errno));
        return 1;
    }
    char *line = malloc(MAX_LINE);
    char *header[MAX_COLUMNS];
    char *fields[MAX_COLUMNS];
    int status = 1, columns = 0;
    table t = {0};
    if (line == NULL || fgets(line, MAX_LINE, in) == NULL || (columns = split(line, header)) <= 0) {
        fprintf(stderr, "%s: no header row\n", file);
        goto done;
    }
    t.columns = (size_t)columns;
    for (size_t number = 2; fgets(line, MAX_LINE, in) != NULL; number++) {
        if (line[0] == '\n' || line[0] == '\0') continue;
        int n = split(line, fields);
        if (n != columns) {
            fprintf(stderr, "%s:%zu: %d fields, the header has %d\n", file, number, n, columns);
            for (int k = 0; k < n; k++) free(fields[k]);
            goto done;
        }
        if (t.rows == t.capacity) {
            t.capacity = t.capacity ? t.capacity * 2 : 1024;
            char **grown = realloc(t.cells, t.capacity * t.columns * sizeof *grown);
            if (grown == NULL) {
                fprintf(stderr, "out of memory\n");
                for (int k = 0; k < n; k++) free(fields[k]);
                goto done;
            }
            t.cells = grown;
        }
        for (int k = 0; k < n; k++) t.cells[t.rows * t.columns + (size_t)k] = fields[k];
        t.rows++;
    }
    int id_col = column_index(header, t.columns, id), time_col = column_index(header, t.columns, time_name);
    if (id_col == -2 || time_col == -2) {
        fprintf(stderr, "%s: no column named %s\n", file, id_col == -2 ? id : time_name);
        goto done;
    }
    infranaut_client *client = NULL;
    infranaut_error err;
    const char *addresses[] = {node};
    if (infranaut_client_open(&client, addresses, 1, 0, 0, &err) != INFRANAUT_OK) {
        fprintf(stderr, "%s\n", err.message);
        goto done;
    }
    char generated[64];
    if (prefix == NULL) {
        snprintf(generated, sizeof generated, "c-push-%ld-%ld", (long)time(NULL), (long)clock());
        prefix = generated;
    }
    uint64_t accepted = 0;
    size_t batches = 0;
    status = 0;
    for (size_t from = 0; from < t.rows; from += (size_t)batch_size, batches++) {
        size_t to = from + (size_t)batch_size < t.rows ? from + (size_t)batch_size : t.rows;
        char key[160];
        snprintf(key, sizeof key, "%s-%zu", prefix, batches);
        int rv = push(client, model, header, &t, from, to, id_col, time_col, prediction, key, &accepted, &err);
        if (rv != INFRANAUT_OK) {
            fprintf(stderr, "batch %zu (rows %zu to %zu): error %d: %s\n", batches, from + 2, to + 1, rv, err.message);
            status = 1;
            break;
        }
    }
    if (status == 0) printf("pushed %" PRIu64 " rows in %zu batches to %s\n", accepted, batches, model);
    infranaut_client_close(client);
done:
    for (int k = 0; k < columns; k++) free(header[k]);
    free_table(&t);
    free(line);
    fclose(in);
    return status;
}
