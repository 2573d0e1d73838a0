/*
 * libinfranaut-client: a small C client for Infranaut nodes (docs/protocol.md), on libnng and
 * libprotobuf-c.
 *
 * - No global state: everything lives in the client and batch objects the caller owns.
 * - Every call returns 0 on success or an error code, and fills `err` (when not NULL) with the
 *   code and a message naming what was wrong. Codes above 0 are the node's status codes
 *   (INFRANAUT_INVALID_ARGUMENT, ...); codes below 0 are this library's own.
 * - A client may be used by one thread at a time; give each thread its own client.
 */
#ifndef INFRANAUT_CLIENT_H
#define INFRANAUT_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum infranaut_code {
    INFRANAUT_OK = 0,
    /* The node's status codes (common.proto StatusCode). */
    INFRANAUT_INVALID_ARGUMENT = 2,
    INFRANAUT_NOT_FOUND = 3,
    INFRANAUT_TOO_LARGE = 4,
    INFRANAUT_UNAVAILABLE = 5,
    INFRANAUT_INTERNAL = 6,
    INFRANAUT_DEADLINE_EXCEEDED = 7,
    INFRANAUT_PERMISSION_DENIED = 8,
    INFRANAUT_RESOURCE_EXHAUSTED = 9,
    /* This library's own. */
    INFRANAUT_E_ARGUMENT = -1,  /* a bad argument to this library (NULL, wrong length, ...) */
    INFRANAUT_E_NOMEM = -2,     /* out of memory */
    INFRANAUT_E_TRANSPORT = -3, /* no answer from any node (the request may have been applied) */
    INFRANAUT_E_PROTOCOL = -4   /* an answer that did not decode */
};

typedef struct infranaut_error {
    int code;
    /* Whether the same request may be sent again (same idempotency key); the client already
     * retried such answers up to its attempts. */
    int retryable;
    char message[512];
} infranaut_error;

typedef struct infranaut_client infranaut_client;
typedef struct infranaut_batch infranaut_batch;

/* Opens a client for `count` node addresses ("tcp://HOST:PORT"). `timeout_ms` bounds each
 * attempt (0: 35,000); `attempts` bounds the sends of one request across nodes (0: 8). */
int infranaut_client_open(infranaut_client **out, const char *const *addresses, size_t count, int timeout_ms,
                          int attempts, infranaut_error *err);
void infranaut_client_close(infranaut_client *client);

/* A columnar batch of `rows` rows for `model`. Columns are copied in; the caller keeps its
 * arrays. Each column must have exactly `rows` values. */
int infranaut_batch_new(infranaut_batch **out, const char *model, size_t rows, infranaut_error *err);
void infranaut_batch_free(infranaut_batch *batch);
/* Doubles: NaN means missing. */
int infranaut_batch_add_doubles(infranaut_batch *batch, const char *name, const double *values, infranaut_error *err);
/* Strings: a NULL entry means missing. */
int infranaut_batch_add_strings(infranaut_batch *batch, const char *name, const char *const *values,
                                infranaut_error *err);
/* Booleans: `missing` may be NULL; otherwise a nonzero entry marks the row missing. */
int infranaut_batch_add_bools(infranaut_batch *batch, const char *name, const uint8_t *values, const uint8_t *missing,
                              infranaut_error *err);
/* Prediction ids, one per row (none NULL or empty). */
int infranaut_batch_set_ids(infranaut_batch *batch, const char *const *ids, infranaut_error *err);
/* Event times, Unix milliseconds, one per row. */
int infranaut_batch_set_event_times(infranaut_batch *batch, const int64_t *unix_ms, infranaut_error *err);
/* Which column holds the prediction and which the label; the model version; reference data. */
int infranaut_batch_set_roles(infranaut_batch *batch, const char *prediction_column, const char *label_column,
                              const char *version, int reference, infranaut_error *err);

typedef struct infranaut_ingest_result {
    uint64_t rows_accepted;
    uint64_t sequence;
    uint32_t shard;
    int replayed; /* this answer replays an earlier apply of the same key */
    uint64_t type_mismatches;
} infranaut_ingest_result;

/* Sends the batch with `idempotency_key` (1 to 128 bytes). A retryable answer, or none, sends the
 * same bytes again to the next node, so the batch is applied once. */
int infranaut_ingest(infranaut_client *client, const infranaut_batch *batch, const char *idempotency_key,
                     infranaut_ingest_result *result, infranaut_error *err);

typedef struct infranaut_model_status {
    uint64_t rows;
    uint64_t batches;
    uint32_t features; /* features the node lists for the model */
} infranaut_model_status;

int infranaut_model_status_get(infranaut_client *client, const char *model, infranaut_model_status *status,
                               infranaut_error *err);

#ifdef __cplusplus
}
#endif

#endif
