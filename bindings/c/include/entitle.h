/*
 * entitle.h: the C ABI of the Entitle SDK (libentitle), for C, C++ and any language with a C FFI.
 *
 * Contract of every function:
 *   - It returns an entitle_status: ENTITLE_OK (0), a denial of the licensing server (1-99, one per
 *     denial code), or what the SDK refused or could not do (100 and up). entitle_status_name()
 *     gives the stable name; entitle_last_error() the message of this thread's last failure.
 *   - Strings passed in are NUL-terminated UTF-8 and only read during the call; "nullable" ones
 *     may be NULL. Strings handed out (char **out) are the caller's: free them with
 *     entitle_string_free(). *out is written only on success.
 *   - A handle from entitle_client_new() may be used by several threads at once, until
 *     entitle_client_free(). Calls that talk to the server block the calling thread.
 *   - No panic or exception crosses the boundary (ENTITLE_INTERNAL is returned instead).
 * Every answer, lease token and licence file is verified against the pinned JWKS.
 */
#ifndef ENTITLE_H
#define ENTITLE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int entitle_status;

enum {
    ENTITLE_OK = 0,
    /* Denials: the server's signed refusals, by their wire code. */
    ENTITLE_INVALID_REQUEST = 1,
    ENTITLE_INVALID_CREDENTIAL = 2,       /* unknown activation code, wrong email or password */
    ENTITLE_INVALID_ACTIVATION = 3,       /* deactivated or revoked: the SDK forgot it; activate again */
    ENTITLE_ENTITLEMENT_NOT_STARTED = 4,
    ENTITLE_ENTITLEMENT_EXPIRED = 5,
    ENTITLE_ENTITLEMENT_DISABLED = 6,
    ENTITLE_SEAT_LIMIT_REACHED = 7,
    ENTITLE_FEATURE_NOT_ENTITLED = 8,
    ENTITLE_POOL_EXHAUSTED = 9,
    ENTITLE_NOTHING_CHECKED_OUT = 10,
    ENTITLE_USAGE_LIMIT_REACHED = 11,
    ENTITLE_LEASE_EXPIRED = 12,           /* a concurrent seat lapsed and went to another device */
    ENTITLE_OFFLINE_NOT_ALLOWED = 13,
    ENTITLE_RATE_LIMITED = 14,
    ENTITLE_SERVER_BUSY = 15,
    ENTITLE_DENIED = 99,                  /* a denial code newer than this library */
    /* The SDK's own verdicts and failures. */
    ENTITLE_NOT_ACTIVATED = 100,
    ENTITLE_BAD_SIGNATURE = 101,          /* not signed by the pinned keys: forged or tampered */
    ENTITLE_REPLAY = 102,                 /* a genuine answer to another request */
    ENTITLE_EXPIRED = 103,                /* the lease or licence file expired */
    ENTITLE_CLOCK_SET_BACK = 104,
    ENTITLE_WRONG_PRODUCT = 105,
    ENTITLE_WRONG_SEAT = 106,
    ENTITLE_NETWORK = 107,                /* unreachable or timed out, after the retries */
    ENTITLE_SERVER = 108,                 /* 5xx on every attempt */
    ENTITLE_MALFORMED = 109,
    ENTITLE_CONFIG = 110,
    ENTITLE_CACHE = 111,                  /* the cache file could not be read or written */
    ENTITLE_INVALID_ARGUMENT = 120,       /* a NULL or non-UTF-8 argument */
    ENTITLE_NOT_FOUND = 121,              /* no such feature or attribute in the lease */
    ENTITLE_INTERNAL = 122                /* a bug in the SDK, caught at the boundary */
};

enum {
    ENTITLE_FEATURE_BOOL = 0,
    ENTITLE_FEATURE_ELEMENT_POOL = 1,
    ENTITLE_FEATURE_USAGE_COUNT = 2,
    ENTITLE_FEATURE_OTHER = 3
};

typedef struct EntitleClient entitle_client;

typedef struct entitle_feature {
    int kind;            /* ENTITLE_FEATURE_* */
    int enabled;         /* 1 when granted and enabled */
    int64_t limit;       /* pool size or usage allowance; -1 is unlimited */
    int64_t overdraft;
    int64_t used;        /* units checked out by every seat (pool) or used this period (usage) */
    int64_t checked_out; /* units this seat holds (pool) */
} entitle_feature;

/* Static strings. */
const char *entitle_version(void);
const char *entitle_status_name(entitle_status status); /* NULL for an unknown status */
const char *entitle_last_error(void);                   /* NULL after a success; valid until the next call */

void entitle_string_free(char *value); /* NULL is ignored */

/* A stable seat id: the platform machine id hashed with the product id, or (in a container, or
 * without one) a random id kept in fallback_file. */
entitle_status entitle_device_fingerprint(const char *product, const char *fallback_file, char **out);

/* jwks_json: the tenant's jwks.json, pinned in the build. cache_path: where the lease and the
 * activation secret are kept. root_ca_pem (nullable): a private CA for the server's TLS
 * certificate. Reads the cache file: no request is made. */
entitle_status entitle_client_new(const char *server_url, const char *tenant, const char *product,
                                  const char *jwks_json, const char *seat_id, const char *cache_path,
                                  const char *root_ca_pem, entitle_client **out);
void entitle_client_free(entitle_client *client); /* NULL is ignored */

int entitle_is_activated(const entitle_client *client); /* 1, 0, or -1 for NULL */

/* Online calls (they block). seat_name is nullable. */
entitle_status entitle_activate_code(const entitle_client *client, const char *code, const char *seat_name);
entitle_status entitle_activate_account(const entitle_client *client, const char *email, const char *password,
                                        const char *seat_name);
entitle_status entitle_state(const entitle_client *client);
entitle_status entitle_refresh(const entitle_client *client);
entitle_status entitle_ensure_lease(const entitle_client *client);
entitle_status entitle_checkout(const entitle_client *client, const char *feature, uint32_t count);
entitle_status entitle_return(const entitle_client *client, const char *feature, uint32_t count);
entitle_status entitle_record_usage(const entitle_client *client, const char *feature, uint32_t amount);
entitle_status entitle_deactivate(const entitle_client *client);
entitle_status entitle_start_refresher(const entitle_client *client);

/* Offline lookups in the verified lease. */
entitle_status entitle_is_enabled(const entitle_client *client, const char *feature, int *out);
entitle_status entitle_get_feature(const entitle_client *client, const char *feature, entitle_feature *out);
entitle_status entitle_attribute_json(const entitle_client *client, const char *key, char **out);
entitle_status entitle_lease_json(const entitle_client *client, char **out);
entitle_status entitle_lease_token(const entitle_client *client, char **out);

/* Air-gapped machines: request file out, licence file in, deactivation request out. */
entitle_status entitle_write_activation_request(const entitle_client *client, const char *code,
                                                const char *seat_name, char **out);
entitle_status entitle_load_licence_file(const entitle_client *client, const char *licence);
entitle_status entitle_write_deactivation_request(const entitle_client *client, char **out);

#ifdef __cplusplus
}
#endif

#endif /* ENTITLE_H */
