/* A licensed command-line program in C: activate once, then check features offline.
 *
 *   cc -I include examples/activate.c -L <dir of libentitle.so> -lentitle -o activate
 *   ENTITLE_URL=http://localhost:8080 ENTITLE_TENANT=ten_… ENTITLE_PRODUCT=prd_… \
 *   ENTITLE_JWKS="$(cat jwks.json)" ./activate 7KQ2-M9XD-4FRT-0BWN-HC8E-P3VZ
 */
#include <stdio.h>
#include <stdlib.h>

#include "entitle.h"

static int fail(const char *what, entitle_status status) {
    const char *message = entitle_last_error();
    fprintf(stderr, "%s: %s (%s)\n", what, entitle_status_name(status), message ? message : "");
    return 1;
}

int main(int argc, char **argv) {
    const char *url = getenv("ENTITLE_URL"), *tenant = getenv("ENTITLE_TENANT");
    const char *product = getenv("ENTITLE_PRODUCT"), *jwks = getenv("ENTITLE_JWKS");
    const char *dir = getenv("ENTITLE_DIR") ? getenv("ENTITLE_DIR") : ".";
    if (!url || !tenant || !product || !jwks) {
        fprintf(stderr, "set ENTITLE_URL, ENTITLE_TENANT, ENTITLE_PRODUCT and ENTITLE_JWKS\n");
        return 2;
    }
    char id_file[4096], cache[4096];
    snprintf(id_file, sizeof id_file, "%s/installation-id", dir);
    snprintf(cache, sizeof cache, "%s/licence.json", dir);

    char *seat = NULL;
    entitle_status status = entitle_device_fingerprint(product, id_file, &seat);
    if (status != ENTITLE_OK) return fail("fingerprint", status);
    entitle_client *client = NULL;
    status = entitle_client_new(url, tenant, product, jwks, seat, cache, NULL, &client);
    entitle_string_free(seat);
    if (status != ENTITLE_OK) return fail("configure", status);

    if (!entitle_is_activated(client)) {
        if (argc < 2) {
            fprintf(stderr, "not activated: pass your activation code\n");
            entitle_client_free(client);
            return 2;
        }
        status = entitle_activate_code(client, argv[1], "example");
        if (status == ENTITLE_SEAT_LIMIT_REACHED) fprintf(stderr, "every seat is taken: deactivate another device\n");
        if (status != ENTITLE_OK) {
            entitle_client_free(client);
            return fail("activate", status);
        }
    }
    /* At start-up: refresh when due; offline, the cached lease is enough until it expires. */
    status = entitle_ensure_lease(client);
    if (status != ENTITLE_OK) {
        entitle_client_free(client);
        return fail("lease", status);
    }
    entitle_start_refresher(client);
    int enabled = 0;
    entitle_is_enabled(client, "batch_export", &enabled);
    printf("batch export: %s\n", enabled ? "on" : "off");
    entitle_client_free(client);
    return 0;
}
