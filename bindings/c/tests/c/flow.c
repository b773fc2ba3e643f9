/* The C ABI against the real server. Phases (argv[1]): "online", "offline_request",
 * "offline_load". The Rust test (tests/c.rs) starts the server, sets the environment, and
 * carries the offline request and licence files between the phases. */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "entitle.h"

static const char *env(const char *name) {
    const char *value = getenv(name);
    if (!value) {
        fprintf(stderr, "missing environment variable %s\n", name);
        exit(2);
    }
    return value;
}

static char *read_file(const char *path) {
    FILE *file = fopen(path, "rb");
    if (!file) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    fseek(file, 0, SEEK_END);
    long size = ftell(file);
    fseek(file, 0, SEEK_SET);
    char *text = malloc((size_t)size + 1);
    size_t read = fread(text, 1, (size_t)size, file);
    text[read] = '\0';
    fclose(file);
    return text;
}

static void write_file(const char *path, const char *text) {
    FILE *file = fopen(path, "wb");
    if (!file || fputs(text, file) < 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    fclose(file);
}

static entitle_client *make_client(const char *seat, const char *cache_name) {
    char cache[4096];
    snprintf(cache, sizeof cache, "%s/%s", env("ENTITLE_DIR"), cache_name);
    char *jwks = read_file(env("ENTITLE_JWKS_FILE"));
    entitle_client *client = NULL;
    entitle_status status = entitle_client_new(env("ENTITLE_URL"), env("ENTITLE_TENANT"), env("ENTITLE_PRODUCT"),
                                               jwks, seat, cache, NULL, &client);
    free(jwks);
    CHECK(status == ENTITLE_OK);
    if (!client) exit(1);
    return client;
}

static void statuses(void) {
    static const struct {
        entitle_status status;
        const char *name;
    } table[] = {
        {ENTITLE_OK, "ok"},
        {ENTITLE_INVALID_REQUEST, "invalid_request"},
        {ENTITLE_INVALID_CREDENTIAL, "invalid_credential"},
        {ENTITLE_INVALID_ACTIVATION, "invalid_activation"},
        {ENTITLE_ENTITLEMENT_NOT_STARTED, "entitlement_not_started"},
        {ENTITLE_ENTITLEMENT_EXPIRED, "entitlement_expired"},
        {ENTITLE_ENTITLEMENT_DISABLED, "entitlement_disabled"},
        {ENTITLE_SEAT_LIMIT_REACHED, "seat_limit_reached"},
        {ENTITLE_FEATURE_NOT_ENTITLED, "feature_not_entitled"},
        {ENTITLE_POOL_EXHAUSTED, "pool_exhausted"},
        {ENTITLE_NOTHING_CHECKED_OUT, "nothing_checked_out"},
        {ENTITLE_USAGE_LIMIT_REACHED, "usage_limit_reached"},
        {ENTITLE_LEASE_EXPIRED, "lease_expired"},
        {ENTITLE_OFFLINE_NOT_ALLOWED, "offline_not_allowed"},
        {ENTITLE_RATE_LIMITED, "rate_limited"},
        {ENTITLE_SERVER_BUSY, "server_busy"},
        {ENTITLE_DENIED, "denied"},
        {ENTITLE_NOT_ACTIVATED, "not_activated"},
        {ENTITLE_BAD_SIGNATURE, "bad_signature"},
        {ENTITLE_REPLAY, "replay"},
        {ENTITLE_EXPIRED, "expired"},
        {ENTITLE_CLOCK_SET_BACK, "clock_set_back"},
        {ENTITLE_WRONG_PRODUCT, "wrong_product"},
        {ENTITLE_WRONG_SEAT, "wrong_seat"},
        {ENTITLE_NETWORK, "network"},
        {ENTITLE_SERVER, "server"},
        {ENTITLE_MALFORMED, "malformed"},
        {ENTITLE_CONFIG, "config"},
        {ENTITLE_CACHE, "cache"},
        {ENTITLE_INVALID_ARGUMENT, "invalid_argument"},
        {ENTITLE_NOT_FOUND, "not_found"},
        {ENTITLE_INTERNAL, "internal"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        const char *name = entitle_status_name(table[i].status);
        CHECK(name != NULL && strcmp(name, table[i].name) == 0);
    }
    CHECK(entitle_status_name(12345) == NULL);
    CHECK(strlen(entitle_version()) > 0);
}

/* Several threads share one handle. */
static void *worker(void *arg) {
    entitle_client *client = arg;
    for (int i = 0; i < 5; i++) {
        int enabled = 0;
        if (entitle_refresh(client) != ENTITLE_OK) return arg;
        if (entitle_is_enabled(client, "batch_export", &enabled) != ENTITLE_OK || enabled != 1) return arg;
    }
    return NULL;
}

static void online(void) {
    entitle_client *client = make_client("c-seat-1", "online.json");
    char *text = NULL;
    int enabled = -1;
    entitle_feature feature;

    CHECK(entitle_is_activated(client) == 0);
    CHECK(entitle_lease_json(client, &text) == ENTITLE_NOT_ACTIVATED);
    CHECK(text == NULL);
    CHECK(entitle_last_error() != NULL);
    CHECK(entitle_activate_code(client, "AAAA-BBBB-CCCC-DDDD", NULL) == ENTITLE_INVALID_CREDENTIAL);
    CHECK(entitle_activate_code(client, env("ENTITLE_CODE"), "C test") == ENTITLE_OK);
    CHECK(entitle_last_error() == NULL);
    CHECK(entitle_is_activated(client) == 1);

    CHECK(entitle_is_enabled(client, "batch_export", &enabled) == ENTITLE_OK && enabled == 1);
    CHECK(entitle_is_enabled(client, "ai_upscale", &enabled) == ENTITLE_OK && enabled == 0);
    CHECK(entitle_get_feature(client, "render_nodes", &feature) == ENTITLE_OK);
    CHECK(feature.kind == ENTITLE_FEATURE_ELEMENT_POOL && feature.limit == 2 && feature.checked_out == 0);
    CHECK(entitle_get_feature(client, "no_such_feature", &feature) == ENTITLE_NOT_FOUND);
    CHECK(entitle_attribute_json(client, "max_users", &text) == ENTITLE_OK && strcmp(text, "5") == 0);
    entitle_string_free(text);
    CHECK(entitle_attribute_json(client, "support_tier", &text) == ENTITLE_OK && strcmp(text, "\"standard\"") == 0);
    entitle_string_free(text);
    CHECK(entitle_lease_json(client, &text) == ENTITLE_OK && strstr(text, "\"c-seat-1\"") != NULL);
    entitle_string_free(text);
    CHECK(entitle_lease_token(client, &text) == ENTITLE_OK && strchr(text, '.') != NULL);
    entitle_string_free(text);

    CHECK(entitle_state(client) == ENTITLE_OK);
    CHECK(entitle_refresh(client) == ENTITLE_OK);
    CHECK(entitle_ensure_lease(client) == ENTITLE_OK);
    CHECK(entitle_checkout(client, "render_nodes", 2) == ENTITLE_OK);
    CHECK(entitle_get_feature(client, "render_nodes", &feature) == ENTITLE_OK && feature.checked_out == 2);
    CHECK(entitle_checkout(client, "render_nodes", 1) == ENTITLE_POOL_EXHAUSTED);
    CHECK(entitle_return(client, "render_nodes", 2) == ENTITLE_OK);
    CHECK(entitle_return(client, "render_nodes", 1) == ENTITLE_NOTHING_CHECKED_OUT);
    CHECK(entitle_record_usage(client, "cloud_renders", 3) == ENTITLE_OK);
    CHECK(entitle_get_feature(client, "cloud_renders", &feature) == ENTITLE_OK && feature.used == 3);
    CHECK(entitle_record_usage(client, "batch_export", 1) == ENTITLE_FEATURE_NOT_ENTITLED);

    /* Bad arguments are refused, never a crash. */
    CHECK(entitle_refresh(NULL) == ENTITLE_INVALID_ARGUMENT);
    CHECK(entitle_is_enabled(client, NULL, &enabled) == ENTITLE_INVALID_ARGUMENT);
    CHECK(entitle_is_enabled(client, "batch_export", NULL) == ENTITLE_INVALID_ARGUMENT);
    CHECK(entitle_checkout(client, "not a key/", 1) == ENTITLE_CONFIG);
    CHECK(entitle_is_activated(NULL) == -1);

    pthread_t threads[4];
    for (int i = 0; i < 4; i++) pthread_create(&threads[i], NULL, worker, client);
    for (int i = 0; i < 4; i++) {
        void *result = NULL;
        pthread_join(threads[i], &result);
        CHECK(result == NULL);
    }
    CHECK(entitle_start_refresher(client) == ENTITLE_OK);
    CHECK(entitle_start_refresher(client) == ENTITLE_OK);

    /* A second handle starts from the cache file, offline. */
    entitle_client *again = make_client("c-seat-1", "online.json");
    CHECK(entitle_is_activated(again) == 1);
    CHECK(entitle_is_enabled(again, "batch_export", &enabled) == ENTITLE_OK && enabled == 1);
    entitle_client_free(again);

    CHECK(entitle_deactivate(client) == ENTITLE_OK);
    CHECK(entitle_is_activated(client) == 0);
    CHECK(entitle_refresh(client) == ENTITLE_NOT_ACTIVATED);
    entitle_client_free(client);
    entitle_client_free(NULL);

    entitle_client *bad = NULL;
    CHECK(entitle_client_new(env("ENTITLE_URL"), "t", "p", "{\"keys\": []}", "s", "/tmp/x.json", NULL, &bad) ==
          ENTITLE_CONFIG);
    CHECK(bad == NULL);
    char *jwks = read_file(env("ENTITLE_JWKS_FILE"));
    CHECK(entitle_client_new(env("ENTITLE_URL"), "t", "p", jwks, "s", "/tmp/x.json", "not a pem", &bad) ==
          ENTITLE_CONFIG);
    CHECK(bad == NULL);
    free(jwks);

    char fallback[4096];
    snprintf(fallback, sizeof fallback, "%s/installation-id", env("ENTITLE_DIR"));
    CHECK(entitle_device_fingerprint(env("ENTITLE_PRODUCT"), fallback, &text) == ENTITLE_OK && strlen(text) == 64);
    entitle_string_free(text);
}

static void offline_request(void) {
    entitle_client *client = make_client("c-air-1", "offline.json");
    char *request = NULL;
    CHECK(entitle_write_activation_request(client, env("ENTITLE_CODE"), "Lab PC", &request) == ENTITLE_OK);
    CHECK(request && strncmp(request, "-----BEGIN ENTITLE ACTIVATION REQUEST-----", 42) == 0);
    if (request) write_file(env("ENTITLE_REQUEST_FILE"), request);
    entitle_string_free(request);
    entitle_client_free(client);
}

static void offline_load(void) {
    entitle_client *client = make_client("c-air-1", "offline.json");
    char *licence = read_file(env("ENTITLE_LICENCE_FILE"));
    const char *begin = "-----BEGIN ENTITLE LICENCE FILE-----\n";
    size_t size = strlen(licence);
    char *tampered = malloc(size + 2);
    size_t head = strlen(begin);
    memcpy(tampered, licence, head);
    tampered[head] = 'x';
    memcpy(tampered + head + 1, licence + head, size - head + 1);
    CHECK(entitle_load_licence_file(client, tampered) == ENTITLE_BAD_SIGNATURE);
    CHECK(entitle_load_licence_file(client, licence) == ENTITLE_OK);
    int enabled = 0;
    CHECK(entitle_is_enabled(client, "batch_export", &enabled) == ENTITLE_OK && enabled == 1);
    char *lease = NULL;
    CHECK(entitle_lease_json(client, &lease) == ENTITLE_OK && strstr(lease, "\"offline\":true") != NULL);
    entitle_string_free(lease);
    char *request = NULL;
    CHECK(entitle_write_deactivation_request(client, &request) == ENTITLE_OK);
    CHECK(request && strncmp(request, "-----BEGIN ENTITLE DEACTIVATION REQUEST-----", 44) == 0);
    if (request) write_file(env("ENTITLE_REQUEST_FILE"), request);
    CHECK(entitle_is_activated(client) == 0);
    entitle_string_free(request);
    free(tampered);
    free(licence);
    entitle_client_free(client);
}

int main(int argc, char **argv) {
    const char *phase = argc > 1 ? argv[1] : "online";
    statuses();
    if (strcmp(phase, "online") == 0) {
        online();
    } else if (strcmp(phase, "offline_request") == 0) {
        offline_request();
    } else if (strcmp(phase, "offline_load") == 0) {
        offline_load();
    } else {
        fprintf(stderr, "unknown phase %s\n", phase);
        return 2;
    }
    printf("C %s: %d passed, %d failed\n", phase, checks_passed, checks_failed);
    return checks_failed == 0 ? 0 : 1;
}
