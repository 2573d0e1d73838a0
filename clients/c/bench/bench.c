/*
 * client-bench: batches per second from one C client to one node (docs/benchmarks.md).
 *   client-bench tcp://HOST:PORT [seconds=10] [rows=1000] [features=20] [models=100]
 * One request in flight; each batch has its own key and goes to the next of `models` models. The
 * batches are built and encoded inside the timed loop, as a service sending its rows would.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "infranaut/client.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: client-bench tcp://HOST:PORT [seconds] [rows] [features] [models]\n");
        return 2;
    }
    double seconds = argc > 2 ? atof(argv[2]) : 10;
    int rows = argc > 3 ? atoi(argv[3]) : 1000, features = argc > 4 ? atoi(argv[4]) : 20;
    int models = argc > 5 ? atoi(argv[5]) : 100;
    double *values = malloc((size_t)rows * sizeof *values);
    for (int r = 0; r < rows; r++) values[r] = r * 0.5;
    infranaut_client *client = NULL;
    infranaut_error err;
    const char *addresses[] = {argv[1]};
    if (infranaut_client_open(&client, addresses, 1, 0, 0, &err) != INFRANAUT_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    long run = (long)time(NULL), sent = 0;
    double started = now(), ended = started + seconds;
    while (now() < ended) {
        char model[32], key[64], name[16];
        snprintf(model, sizeof model, "c-bench-%ld", sent % models);
        snprintf(key, sizeof key, "c-bench-%ld-%ld", run, sent);
        infranaut_batch *batch = NULL;
        infranaut_batch_new(&batch, model, (size_t)rows, &err);
        for (int f = 0; f < features; f++) {
            snprintf(name, sizeof name, "f%d", f);
            infranaut_batch_add_doubles(batch, name, values, &err);
        }
        infranaut_ingest_result result;
        int rv = infranaut_ingest(client, batch, key, &result, &err);
        infranaut_batch_free(batch);
        if (rv != INFRANAUT_OK) {
            fprintf(stderr, "error %d: %s\n", rv, err.message);
            return 1;
        }
        sent++;
    }
    double elapsed = now() - started;
    printf("%ld batches of %d rows x %d features in %.1f s: %.0f batches/s, %.0f rows/s\n", sent, rows, features, elapsed,
           sent / elapsed, sent * rows / elapsed);
    infranaut_client_close(client);
    free(values);
    return 0;
}
