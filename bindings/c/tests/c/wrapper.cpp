// The C++ RAII wrapper against the real server (started by tests/c.rs).
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "check.h"
#include "entitle.hpp"

static std::string env(const char *name) {
    const char *value = std::getenv(name);
    if (!value) {
        std::cerr << "missing environment variable " << name << "\n";
        std::exit(2);
    }
    return value;
}

static std::string read_file(const std::string &path) {
    std::ifstream file(path);
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
}

int main() {
    entitle::Client client(env("ENTITLE_URL"), env("ENTITLE_TENANT"), env("ENTITLE_PRODUCT"),
                           read_file(env("ENTITLE_JWKS_FILE")), "cpp-seat", env("ENTITLE_DIR") + "/cpp.json");
    try {
        client.activate("AAAA-BBBB-CCCC-DDDD");
        CHECK(false);
    } catch (const entitle::Error &error) {
        CHECK(error.status() == ENTITLE_INVALID_CREDENTIAL);
        CHECK(error.is_denial());
        CHECK(error.name() == "invalid_credential");
    }
    client.activate(env("ENTITLE_CODE"), std::string("C++ test"));
    CHECK(client.is_activated());
    CHECK(client.is_enabled("batch_export"));
    CHECK(!client.feature("no_such_feature").has_value());
    CHECK(client.attribute_json("max_users").value_or("") == "5");
    {
        entitle::Checkout nodes(client, "render_nodes", 2);
        CHECK(client.feature("render_nodes")->checked_out == 2);
        try {
            entitle::Checkout more(client, "render_nodes", 1);
            CHECK(false);
        } catch (const entitle::Error &error) {
            CHECK(error.status() == ENTITLE_POOL_EXHAUSTED);
        }
    }
    CHECK(client.feature("render_nodes")->checked_out == 0);
    entitle::Checkout early(client, "render_nodes", 1);
    early.give_back();
    CHECK(client.feature("render_nodes")->checked_out == 0);
    client.deactivate();
    CHECK(!client.is_activated());
    try {
        client.refresh();
        CHECK(false);
    } catch (const entitle::Error &error) {
        CHECK(error.status() == ENTITLE_NOT_ACTIVATED && !error.is_denial());
    }
    std::cout << "C++ wrapper: " << checks_passed << " passed, " << checks_failed << " failed\n";
    return checks_failed == 0 ? 0 : 1;
}
