/*
 * libinfranaut-client against a real node: client-test tcp://HOST:PORT
 * Builds a batch of every column kind, ingests it once (and again: replayed), reads the status
 * back, and checks that refusals carry the node's code and that a dead address is a transport
 * error. Exits 0 when every check held.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "infranaut/client.h"

static int failures = 0;

#define CHECK(condition, ...)                                                                                          \
    do {                                                                                                               \
        if (!(condition)) {                                                                                            \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #condition);                              \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fprintf(stderr, "\n");                                                                                     \
            failures++;                                                                                                \
        }                                                                                                              \
    } while (0)

enum { ROWS = 500 };

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: client-test tcp://HOST:PORT\n");
        return 2;
    }
    char model[64], key[96];
    snprintf(model, sizeof model, "c-test-%ld", (long)time(NULL));
    snprintf(key, sizeof key, "%s-batch-0", model);
    infranaut_error err;
    infranaut_client *client = NULL;
    const char *addresses[] = {argv[1]};
    CHECK(infranaut_client_open(&client, addresses, 1, 10000, 4, &err) == INFRANAUT_OK, "%s", err.message);

    static double amount[ROWS];
    static const char *country[ROWS];
    static const char *ids[ROWS];
    static char id_text[ROWS][16];
    static uint8_t flag[ROWS], flag_missing[ROWS];
    static int64_t times[ROWS];
    const char *countries[] = {"de", "fr", NULL, "br"};
    for (int r = 0; r < ROWS; r++) {
        amount[r] = r % 10 == 0 ? NAN : 10.0 + r;
        country[r] = countries[r % 4];
        snprintf(id_text[r], sizeof id_text[r], "id-%d", r);
        ids[r] = id_text[r];
        flag[r] = (uint8_t)(r % 2);
        flag_missing[r] = (uint8_t)(r % 7 == 0);
        times[r] = 1764518400000 + r;
    }
    infranaut_batch *batch = NULL;
    CHECK(infranaut_batch_new(&batch, model, ROWS, &err) == INFRANAUT_OK, "%s", err.message);
    CHECK(infranaut_batch_add_doubles(batch, "amount", amount, &err) == INFRANAUT_OK, "%s", err.message);
    CHECK(infranaut_batch_add_strings(batch, "country", country, &err) == INFRANAUT_OK, "%s", err.message);
    CHECK(infranaut_batch_add_bools(batch, "flag", flag, flag_missing, &err) == INFRANAUT_OK, "%s", err.message);
    CHECK(infranaut_batch_add_doubles(batch, "score", amount, &err) == INFRANAUT_OK, "%s", err.message);
    CHECK(infranaut_batch_set_ids(batch, ids, &err) == INFRANAUT_OK, "%s", err.message);
    CHECK(infranaut_batch_set_event_times(batch, times, &err) == INFRANAUT_OK, "%s", err.message);
    CHECK(infranaut_batch_set_roles(batch, "score", NULL, "v1", 0, &err) == INFRANAUT_OK, "%s", err.message);
    /* Local refusals: a column twice, an empty model. */
    CHECK(infranaut_batch_add_doubles(batch, "amount", amount, &err) == INFRANAUT_E_ARGUMENT &&
              strstr(err.message, "already") != NULL,
          "%s", err.message);
    infranaut_batch *none = NULL;
    CHECK(infranaut_batch_new(&none, "", 1, &err) == INFRANAUT_E_ARGUMENT && none == NULL, "%s", err.message);

    infranaut_ingest_result result;
    CHECK(infranaut_ingest(client, batch, key, &result, &err) == INFRANAUT_OK, "%s", err.message);
    CHECK(result.rows_accepted == ROWS && !result.replayed, "accepted %llu", (unsigned long long)result.rows_accepted);
    /* The same key again: applied once, answered as a replay. */
    CHECK(infranaut_ingest(client, batch, key, &result, &err) == INFRANAUT_OK, "%s", err.message);
    CHECK(result.replayed, "the second send was not a replay");
    infranaut_batch_free(batch);

    infranaut_model_status status;
    CHECK(infranaut_model_status_get(client, model, &status, &err) == INFRANAUT_OK, "%s", err.message);
    CHECK(status.rows == ROWS && status.batches == 1, "rows %llu batches %llu", (unsigned long long)status.rows,
          (unsigned long long)status.batches);
    CHECK(status.features == 4, "features %u", status.features);

    /* The node's refusals carry its code: an unknown model, a string over 64 KiB. */
    CHECK(infranaut_model_status_get(client, "never-sent-anything", &status, &err) == INFRANAUT_NOT_FOUND &&
              !err.retryable,
          "code %d: %s", err.code, err.message);
    char *huge = malloc(70000);
    memset(huge, 'x', 69999);
    huge[69999] = '\0';
    const char *one[] = {huge};
    infranaut_batch *bad = NULL;
    CHECK(infranaut_batch_new(&bad, model, 1, &err) == INFRANAUT_OK, "%s", err.message);
    CHECK(infranaut_batch_add_strings(bad, "note", one, &err) == INFRANAUT_OK, "%s", err.message);
    CHECK(infranaut_ingest(client, bad, "c-test-bad", &result, &err) == INFRANAUT_INVALID_ARGUMENT && !err.retryable,
          "code %d: %s", err.code, err.message);
    infranaut_batch_free(bad);
    free(huge);
    infranaut_client_close(client);

    /* Nothing listens on port 1: a transport error after the attempts. */
    const char *dead[] = {"tcp://127.0.0.1:1"};
    infranaut_client *nowhere = NULL;
    CHECK(infranaut_client_open(&nowhere, dead, 1, 300, 2, &err) == INFRANAUT_OK, "%s", err.message);
    infranaut_batch *small = NULL;
    infranaut_batch_new(&small, model, 1, &err);
    infranaut_batch_add_doubles(small, "amount", amount + 1, &err);
    CHECK(infranaut_ingest(nowhere, small, "k", &result, &err) == INFRANAUT_E_TRANSPORT && err.retryable, "code %d: %s",
          err.code, err.message);
    infranaut_batch_free(small);
    infranaut_client_close(nowhere);

    if (failures == 0) printf("client-test: every check held\n");
    return failures == 0 ? 0 : 1;
}
