/*
 * libinfranaut-client (include/infranaut/client.h): requests over nng REQ sockets, one per node
 * address, with protobuf-c frames (docs/protocol.md). Retryable answers and silences are sent
 * again, with the same bytes, to the next node.
 */
#include "infranaut/client.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "infranaut/v1/envelope.pb-c.h"

enum {
    MAX_ADDRESSES = 64,
    MAX_KEY_BYTES = 128,
    MAX_NAME_BYTES = 256,
    /* The node's default request limit; the node answers TOO_LARGE above its own. */
    MAX_REQUEST_BYTES = 64 << 20
};

struct infranaut_client {
    size_t count;
    char **addresses;
    nng_socket *sockets;
    int *opened;
    size_t next;
    int timeout_ms;
    int attempts;
};

struct infranaut_batch {
    Infranaut__V1__TelemetryBatch *message;
    size_t rows;
};

static int fail(infranaut_error *err, int code, int retryable, const char *format, ...) {
    if (err != NULL) {
        err->code = code;
        err->retryable = retryable;
        va_list args;
        va_start(args, format);
        vsnprintf(err->message, sizeof err->message, format, args);
        va_end(args);
    }
    return code;
}

static int ok(infranaut_error *err) {
    if (err != NULL) {
        err->code = INFRANAUT_OK;
        err->retryable = 0;
        err->message[0] = '\0';
    }
    return INFRANAUT_OK;
}

static char *copy_string(const char *text) {
    size_t length = strlen(text);
    char *copy = malloc(length + 1);
    if (copy != NULL) memcpy(copy, text, length + 1);
    return copy;
}

/* --- client -------------------------------------------------------------------------------- */

int infranaut_client_open(infranaut_client **out, const char *const *addresses, size_t count, int timeout_ms,
                          int attempts, infranaut_error *err) {
    if (out == NULL || addresses == NULL || count == 0 || count > MAX_ADDRESSES) {
        return fail(err, INFRANAUT_E_ARGUMENT, 0, "give 1 to %d node addresses", MAX_ADDRESSES);
    }
    *out = NULL;
    for (size_t i = 0; i < count; i++) {
        if (addresses[i] == NULL || strstr(addresses[i], "://") == NULL) {
            return fail(err, INFRANAUT_E_ARGUMENT, 0, "address %zu is not a node address such as tcp://127.0.0.1:7400",
                        i);
        }
    }
    infranaut_client *client = calloc(1, sizeof *client);
    if (client == NULL) return fail(err, INFRANAUT_E_NOMEM, 0, "out of memory");
    client->count = count;
    client->timeout_ms = timeout_ms > 0 ? timeout_ms : 35000;
    client->attempts = attempts > 0 ? attempts : 8;
    client->addresses = calloc(count, sizeof *client->addresses);
    client->sockets = calloc(count, sizeof *client->sockets);
    client->opened = calloc(count, sizeof *client->opened);
    if (client->addresses == NULL || client->sockets == NULL || client->opened == NULL) {
        infranaut_client_close(client);
        return fail(err, INFRANAUT_E_NOMEM, 0, "out of memory");
    }
    for (size_t i = 0; i < count; i++) {
        client->addresses[i] = copy_string(addresses[i]);
        if (client->addresses[i] == NULL) {
            infranaut_client_close(client);
            return fail(err, INFRANAUT_E_NOMEM, 0, "out of memory");
        }
    }
    *out = client;
    return ok(err);
}

void infranaut_client_close(infranaut_client *client) {
    if (client == NULL) return;
    for (size_t i = 0; i < client->count; i++) {
        if (client->opened != NULL && client->opened[i]) nng_close(client->sockets[i]);
        if (client->addresses != NULL) free(client->addresses[i]);
    }
    free(client->addresses);
    free(client->sockets);
    free(client->opened);
    free(client);
}

/* The REQ socket of node `i`, opened and dialled (in the background) on first use. nng never
 * re-sends by itself (resend time infinite): this library retries, with the same bytes. */
static int socket_of(infranaut_client *client, size_t i, nng_socket *out, infranaut_error *err) {
    if (!client->opened[i]) {
        nng_socket sock;
        int rv = nng_req0_open(&sock);
        if (rv != 0) return fail(err, INFRANAUT_E_TRANSPORT, 1, "cannot open a socket: %s", nng_strerror(rv));
        nng_socket_set_ms(sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
        nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, client->timeout_ms);
        nng_socket_set_ms(sock, NNG_OPT_SENDTIMEO, client->timeout_ms);
        nng_socket_set_size(sock, NNG_OPT_RECVMAXSZ, MAX_REQUEST_BYTES);
        rv = nng_dial(sock, client->addresses[i], NULL, NNG_FLAG_NONBLOCK);
        if (rv != 0) {
            nng_close(sock);
            return fail(err, INFRANAUT_E_ARGUMENT, 0, "cannot dial %s: %s", client->addresses[i], nng_strerror(rv));
        }
        client->sockets[i] = sock;
        client->opened[i] = 1;
    }
    *out = client->sockets[i];
    return INFRANAUT_OK;
}

static const Infranaut__V1__Status *status_of(const Infranaut__V1__Response *response) {
    switch (response->body_case) {
    case INFRANAUT__V1__RESPONSE__BODY_ERROR: return response->error;
    case INFRANAUT__V1__RESPONSE__BODY_INGEST: return response->ingest ? response->ingest->status : NULL;
    case INFRANAUT__V1__RESPONSE__BODY_STATUS: return response->status ? response->status->status : NULL;
    default: return NULL;
    }
}

static int retryable_code(int code) {
    return code == INFRANAUT_UNAVAILABLE || code == INFRANAUT_DEADLINE_EXCEEDED || code == INFRANAUT_RESOURCE_EXHAUSTED ||
           code == INFRANAUT_INTERNAL;
}

/* Sends `request` until a node answers OK or not retryably, at most `attempts` times; on OK the
 * decoded response is in `*out` (free with infranaut__v1__response__free_unpacked). */
static int exchange(infranaut_client *client, Infranaut__V1__Request *request, Infranaut__V1__Response **out,
                    infranaut_error *err) {
    *out = NULL;
    request->version = 1;
    request->timeout_ms = (uint32_t)(client->timeout_ms < 30000 ? client->timeout_ms : 30000);
    size_t size = protobuf_c_message_get_packed_size(&request->base);
    if (size > MAX_REQUEST_BYTES) {
        return fail(err, INFRANAUT_TOO_LARGE, 0, "the request is %zu bytes; split the batch", size);
    }
    uint8_t *bytes = malloc(size > 0 ? size : 1);
    if (bytes == NULL) return fail(err, INFRANAUT_E_NOMEM, 0, "out of memory");
    protobuf_c_message_pack(&request->base, bytes);
    int result = fail(err, INFRANAUT_E_TRANSPORT, 1, "no attempt was made");
    for (int attempt = 0; attempt < client->attempts; attempt++) {
        size_t i = client->next % client->count;
        nng_socket sock;
        int rv = socket_of(client, i, &sock, err);
        if (rv == INFRANAUT_E_ARGUMENT) {
            result = rv;
            break;
        }
        void *reply = NULL;
        size_t reply_size = 0;
        if (rv == INFRANAUT_OK) {
            rv = nng_send(sock, bytes, size, 0);
            if (rv == 0) rv = nng_recv(sock, &reply, &reply_size, NNG_FLAG_ALLOC);
            if (rv != 0) {
                result = fail(err, INFRANAUT_E_TRANSPORT, 1, "%s: no answer: %s", client->addresses[i], nng_strerror(rv));
            }
        }
        if (reply != NULL) {
            Infranaut__V1__Response *response = infranaut__v1__response__unpack(NULL, reply_size, reply);
            nng_free(reply, reply_size);
            if (response == NULL) {
                result = fail(err, INFRANAUT_E_PROTOCOL, 0, "%s: the answer did not decode", client->addresses[i]);
                break;
            }
            const Infranaut__V1__Status *status = status_of(response);
            int code = status != NULL ? (int)status->code : INFRANAUT_INTERNAL;
            if (code == 1 /* OK */) {
                *out = response;
                result = ok(err);
                break;
            }
            int retryable = status != NULL && (status->retryable || retryable_code(code));
            result = fail(err, code, retryable, "%s: %s", client->addresses[i],
                          status != NULL && status->message != NULL ? status->message : "no status in the answer");
            uint32_t after = status != NULL ? status->retry_after_ms : 0;
            infranaut__v1__response__free_unpacked(response, NULL);
            if (!retryable) break;
            if (after > 0) nng_msleep(after);
        }
        client->next = (client->next + 1) % client->count;
        int pause = 50 << (attempt < 5 ? attempt : 5);
        nng_msleep((nng_duration)(pause < 2000 ? pause : 2000));
    }
    free(bytes);
    return result;
}

/* --- batches ------------------------------------------------------------------------------- */

int infranaut_batch_new(infranaut_batch **out, const char *model, size_t rows, infranaut_error *err) {
    if (out == NULL || model == NULL || model[0] == '\0' || strlen(model) > MAX_NAME_BYTES) {
        return fail(err, INFRANAUT_E_ARGUMENT, 0, "a model id of 1 to %d bytes is required", MAX_NAME_BYTES);
    }
    if (rows == 0 || rows > UINT32_MAX) return fail(err, INFRANAUT_E_ARGUMENT, 0, "a batch has 1 to 2^32-1 rows");
    *out = NULL;
    infranaut_batch *batch = calloc(1, sizeof *batch);
    Infranaut__V1__TelemetryBatch *message = malloc(sizeof *message);
    char *id = copy_string(model);
    if (batch == NULL || message == NULL || id == NULL) {
        free(batch);
        free(message);
        free(id);
        return fail(err, INFRANAUT_E_NOMEM, 0, "out of memory");
    }
    infranaut__v1__telemetry_batch__init(message);
    message->model_id = id;
    message->row_count = (uint32_t)rows;
    batch->message = message;
    batch->rows = rows;
    *out = batch;
    return ok(err);
}

void infranaut_batch_free(infranaut_batch *batch) {
    if (batch == NULL) return;
    /* Every part was allocated with malloc, as protobuf-c's default allocator frees it. */
    protobuf_c_message_free_unpacked(&batch->message->base, NULL);
    free(batch);
}

static int check_name(const infranaut_batch *batch, const char *name, infranaut_error *err) {
    if (batch == NULL || name == NULL || name[0] == '\0' || strlen(name) > MAX_NAME_BYTES) {
        return fail(err, INFRANAUT_E_ARGUMENT, 0, "a column name of 1 to %d bytes is required", MAX_NAME_BYTES);
    }
    for (size_t i = 0; i < batch->message->n_columns; i++) {
        if (strcmp(batch->message->columns[i]->name, name) == 0) {
            return fail(err, INFRANAUT_E_ARGUMENT, 0, "column %s is already in the batch", name);
        }
    }
    return INFRANAUT_OK;
}

/* Appends `column` (owned from now on by the batch). */
static int append_column(infranaut_batch *batch, Infranaut__V1__Column *column, infranaut_error *err) {
    Infranaut__V1__Column **grown =
        realloc(batch->message->columns, (batch->message->n_columns + 1) * sizeof *batch->message->columns);
    if (grown == NULL) {
        protobuf_c_message_free_unpacked(&column->base, NULL);
        return fail(err, INFRANAUT_E_NOMEM, 0, "out of memory");
    }
    batch->message->columns = grown;
    batch->message->columns[batch->message->n_columns++] = column;
    return ok(err);
}

static Infranaut__V1__Column *new_column(const char *name) {
    Infranaut__V1__Column *column = malloc(sizeof *column);
    if (column == NULL) return NULL;
    infranaut__v1__column__init(column);
    column->name = copy_string(name);
    if (column->name == NULL) {
        free(column);
        return NULL;
    }
    return column;
}

int infranaut_batch_add_doubles(infranaut_batch *batch, const char *name, const double *values, infranaut_error *err) {
    int rv = check_name(batch, name, err);
    if (rv != INFRANAUT_OK) return rv;
    if (values == NULL) return fail(err, INFRANAUT_E_ARGUMENT, 0, "column %s: no values", name);
    Infranaut__V1__Column *column = new_column(name);
    Infranaut__V1__DoubleColumn *doubles = malloc(sizeof *doubles);
    double *copy = malloc(batch->rows * sizeof *copy);
    if (column == NULL || doubles == NULL || copy == NULL) {
        if (column != NULL) protobuf_c_message_free_unpacked(&column->base, NULL);
        free(doubles);
        free(copy);
        return fail(err, INFRANAUT_E_NOMEM, 0, "out of memory");
    }
    infranaut__v1__double_column__init(doubles);
    memcpy(copy, values, batch->rows * sizeof *copy);
    doubles->n_values = batch->rows;
    doubles->values = copy;
    column->values_case = INFRANAUT__V1__COLUMN__VALUES_DOUBLES;
    column->doubles = doubles;
    return append_column(batch, column, err);
}

int infranaut_batch_add_strings(infranaut_batch *batch, const char *name, const char *const *values,
                                infranaut_error *err) {
    int rv = check_name(batch, name, err);
    if (rv != INFRANAUT_OK) return rv;
    if (values == NULL) return fail(err, INFRANAUT_E_ARGUMENT, 0, "column %s: no values", name);
    Infranaut__V1__Column *column = new_column(name);
    Infranaut__V1__StringColumn *strings = malloc(sizeof *strings);
    if (column == NULL || strings == NULL) {
        if (column != NULL) protobuf_c_message_free_unpacked(&column->base, NULL);
        free(strings);
        return fail(err, INFRANAUT_E_NOMEM, 0, "out of memory");
    }
    infranaut__v1__string_column__init(strings);
    column->values_case = INFRANAUT__V1__COLUMN__VALUES_STRINGS;
    column->strings = strings; /* owned by the column from here: freed with it on any failure */
    strings->values = calloc(batch->rows, sizeof *strings->values);
    size_t missing = 0;
    for (size_t r = 0; r < batch->rows; r++) missing += values[r] == NULL;
    strings->missing_rows = missing > 0 ? malloc(missing * sizeof *strings->missing_rows) : NULL;
    if (strings->values == NULL || (missing > 0 && strings->missing_rows == NULL)) {
        protobuf_c_message_free_unpacked(&column->base, NULL);
        return fail(err, INFRANAUT_E_NOMEM, 0, "out of memory");
    }
    for (size_t r = 0; r < batch->rows; r++) {
        strings->values[r] = copy_string(values[r] != NULL ? values[r] : "");
        if (strings->values[r] == NULL) {
            strings->n_values = r; /* the copies made so far are freed with the column */
            protobuf_c_message_free_unpacked(&column->base, NULL);
            return fail(err, INFRANAUT_E_NOMEM, 0, "out of memory");
        }
        if (values[r] == NULL) strings->missing_rows[strings->n_missing_rows++] = (uint32_t)r;
    }
    strings->n_values = batch->rows;
    return append_column(batch, column, err);
}

int infranaut_batch_add_bools(infranaut_batch *batch, const char *name, const uint8_t *values, const uint8_t *missing,
                              infranaut_error *err) {
    int rv = check_name(batch, name, err);
    if (rv != INFRANAUT_OK) return rv;
    if (values == NULL) return fail(err, INFRANAUT_E_ARGUMENT, 0, "column %s: no values", name);
    Infranaut__V1__Column *column = new_column(name);
    Infranaut__V1__BoolColumn *bools = malloc(sizeof *bools);
    if (column == NULL || bools == NULL) {
        if (column != NULL) protobuf_c_message_free_unpacked(&column->base, NULL);
        free(bools);
        return fail(err, INFRANAUT_E_NOMEM, 0, "out of memory");
    }
    infranaut__v1__bool_column__init(bools);
    column->values_case = INFRANAUT__V1__COLUMN__VALUES_BOOLS;
    column->bools = bools;
    size_t absent = 0;
    for (size_t r = 0; missing != NULL && r < batch->rows; r++) absent += missing[r] != 0;
    bools->values = malloc(batch->rows * sizeof *bools->values);
    bools->missing_rows = absent > 0 ? malloc(absent * sizeof *bools->missing_rows) : NULL;
    if (bools->values == NULL || (absent > 0 && bools->missing_rows == NULL)) {
        protobuf_c_message_free_unpacked(&column->base, NULL);
        return fail(err, INFRANAUT_E_NOMEM, 0, "out of memory");
    }
    bools->n_values = batch->rows;
    for (size_t r = 0; r < batch->rows; r++) {
        int gone = missing != NULL && missing[r] != 0;
        bools->values[r] = !gone && values[r] != 0;
        if (gone) bools->missing_rows[bools->n_missing_rows++] = (uint32_t)r;
    }
    return append_column(batch, column, err);
}

int infranaut_batch_set_ids(infranaut_batch *batch, const char *const *ids, infranaut_error *err) {
    if (batch == NULL || ids == NULL) return fail(err, INFRANAUT_E_ARGUMENT, 0, "ids: none given");
    if (batch->message->n_prediction_ids > 0) return fail(err, INFRANAUT_E_ARGUMENT, 0, "ids are set already");
    for (size_t r = 0; r < batch->rows; r++) {
        if (ids[r] == NULL || ids[r][0] == '\0') return fail(err, INFRANAUT_E_ARGUMENT, 0, "row %zu has no id", r);
    }
    char **copy = calloc(batch->rows, sizeof *copy);
    if (copy == NULL) return fail(err, INFRANAUT_E_NOMEM, 0, "out of memory");
    for (size_t r = 0; r < batch->rows; r++) {
        copy[r] = copy_string(ids[r]);
        if (copy[r] == NULL) {
            for (size_t k = 0; k < r; k++) free(copy[k]);
            free(copy);
            return fail(err, INFRANAUT_E_NOMEM, 0, "out of memory");
        }
    }
    batch->message->prediction_ids = copy;
    batch->message->n_prediction_ids = batch->rows;
    return ok(err);
}

int infranaut_batch_set_event_times(infranaut_batch *batch, const int64_t *unix_ms, infranaut_error *err) {
    if (batch == NULL || unix_ms == NULL) return fail(err, INFRANAUT_E_ARGUMENT, 0, "event times: none given");
    int64_t *copy = malloc(batch->rows * sizeof *copy);
    if (copy == NULL) return fail(err, INFRANAUT_E_NOMEM, 0, "out of memory");
    memcpy(copy, unix_ms, batch->rows * sizeof *copy);
    free(batch->message->event_time_unix_ms);
    batch->message->event_time_unix_ms = copy;
    batch->message->n_event_time_unix_ms = batch->rows;
    return ok(err);
}

/* Replaces a string field, keeping protobuf-c's shared empty string for "unset". */
static int set_string(char **field, const char *value, infranaut_error *err) {
    char *copy = NULL;
    if (value != NULL && value[0] != '\0') {
        copy = copy_string(value);
        if (copy == NULL) return fail(err, INFRANAUT_E_NOMEM, 0, "out of memory");
    }
    if (*field != NULL && *field != (char *)protobuf_c_empty_string) free(*field);
    *field = copy != NULL ? copy : (char *)protobuf_c_empty_string;
    return INFRANAUT_OK;
}

int infranaut_batch_set_roles(infranaut_batch *batch, const char *prediction_column, const char *label_column,
                              const char *version, int reference, infranaut_error *err) {
    if (batch == NULL) return fail(err, INFRANAUT_E_ARGUMENT, 0, "no batch");
    int rv = set_string(&batch->message->prediction_column, prediction_column, err);
    if (rv == INFRANAUT_OK) rv = set_string(&batch->message->label_column, label_column, err);
    if (rv == INFRANAUT_OK) rv = set_string(&batch->message->version, version, err);
    if (rv != INFRANAUT_OK) return rv;
    batch->message->reference = reference != 0;
    return ok(err);
}

/* --- requests ------------------------------------------------------------------------------ */

int infranaut_ingest(infranaut_client *client, const infranaut_batch *batch, const char *idempotency_key,
                     infranaut_ingest_result *result, infranaut_error *err) {
    if (client == NULL || batch == NULL) return fail(err, INFRANAUT_E_ARGUMENT, 0, "no client or no batch");
    if (idempotency_key == NULL || idempotency_key[0] == '\0' || strlen(idempotency_key) > MAX_KEY_BYTES) {
        return fail(err, INFRANAUT_E_ARGUMENT, 0, "an idempotency key of 1 to %d bytes is required", MAX_KEY_BYTES);
    }
    Infranaut__V1__IngestRequest ingest = INFRANAUT__V1__INGEST_REQUEST__INIT;
    ingest.idempotency_key = (char *)idempotency_key;
    ingest.batch = batch->message;
    Infranaut__V1__Request request = INFRANAUT__V1__REQUEST__INIT;
    request.body_case = INFRANAUT__V1__REQUEST__BODY_INGEST;
    request.ingest = &ingest;
    Infranaut__V1__Response *response = NULL;
    int rv = exchange(client, &request, &response, err);
    if (rv != INFRANAUT_OK) return rv;
    if (response->body_case != INFRANAUT__V1__RESPONSE__BODY_INGEST || response->ingest == NULL) {
        infranaut__v1__response__free_unpacked(response, NULL);
        return fail(err, INFRANAUT_E_PROTOCOL, 0, "the node answered an ingest with another body");
    }
    if (result != NULL) {
        result->rows_accepted = response->ingest->rows_accepted;
        result->sequence = response->ingest->sequence;
        result->shard = response->ingest->shard;
        result->replayed = response->ingest->replayed;
        result->type_mismatches = response->ingest->type_mismatch_count;
    }
    infranaut__v1__response__free_unpacked(response, NULL);
    return INFRANAUT_OK;
}

int infranaut_model_status_get(infranaut_client *client, const char *model, infranaut_model_status *status,
                               infranaut_error *err) {
    if (client == NULL || model == NULL || model[0] == '\0') {
        return fail(err, INFRANAUT_E_ARGUMENT, 0, "no client or no model id");
    }
    Infranaut__V1__StatusRequest asked = INFRANAUT__V1__STATUS_REQUEST__INIT;
    asked.model_id = (char *)model;
    asked.max_features = 1;
    Infranaut__V1__Request request = INFRANAUT__V1__REQUEST__INIT;
    request.body_case = INFRANAUT__V1__REQUEST__BODY_STATUS;
    request.status = &asked;
    Infranaut__V1__Response *response = NULL;
    int rv = exchange(client, &request, &response, err);
    if (rv != INFRANAUT_OK) return rv;
    if (response->body_case != INFRANAUT__V1__RESPONSE__BODY_STATUS || response->status == NULL ||
        response->status->model == NULL) {
        infranaut__v1__response__free_unpacked(response, NULL);
        return fail(err, INFRANAUT_E_PROTOCOL, 0, "the node answered a status with another body");
    }
    if (status != NULL) {
        status->rows = response->status->model->rows;
        status->batches = response->status->model->batches;
        status->features = (uint32_t)response->status->features_total;
    }
    infranaut__v1__response__free_unpacked(response, NULL);
    return INFRANAUT_OK;
}
