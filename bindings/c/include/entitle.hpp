// entitle.hpp: a header-only C++17 wrapper over entitle.h. The client frees itself, failures
// are exceptions carrying the status, strings are std::string, and a Checkout returns its pool
// units when it goes out of scope.
#ifndef ENTITLE_HPP
#define ENTITLE_HPP

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "entitle.h"

namespace entitle {

// Any failed call. status() is the entitle_status; is_denial() tells a server's verdict apart.
class Error : public std::runtime_error {
public:
    Error(entitle_status status, const std::string &message)
        : std::runtime_error(message), status_(status) {}
    entitle_status status() const noexcept { return status_; }
    std::string name() const {
        const char *name = entitle_status_name(status_);
        return name ? name : "unknown";
    }
    bool is_denial() const noexcept { return status_ > 0 && status_ < 100; }

private:
    entitle_status status_;
};

namespace detail {
inline void check(entitle_status status) {
    if (status != ENTITLE_OK) {
        const char *message = entitle_last_error();
        throw Error(status, message ? message : "entitle error");
    }
}

inline std::string take(char *owned) {
    std::unique_ptr<char, void (*)(char *)> guard(owned, entitle_string_free);
    return owned ? std::string(owned) : std::string();
}

inline const char *c_str_or_null(const std::optional<std::string> &value) {
    return value ? value->c_str() : nullptr;
}
} // namespace detail

inline std::string device_fingerprint(const std::string &product, const std::string &fallback_file) {
    char *out = nullptr;
    detail::check(entitle_device_fingerprint(product.c_str(), fallback_file.c_str(), &out));
    return detail::take(out);
}

class Client {
public:
    Client(const std::string &server_url, const std::string &tenant, const std::string &product,
           const std::string &jwks_json, const std::string &seat_id, const std::string &cache_path,
           const std::optional<std::string> &root_ca_pem = std::nullopt) {
        entitle_client *raw = nullptr;
        detail::check(entitle_client_new(server_url.c_str(), tenant.c_str(), product.c_str(), jwks_json.c_str(),
                                         seat_id.c_str(), cache_path.c_str(), detail::c_str_or_null(root_ca_pem),
                                         &raw));
        handle_.reset(raw);
    }

    bool is_activated() const { return entitle_is_activated(get()) == 1; }
    void activate(const std::string &code, const std::optional<std::string> &seat_name = std::nullopt) {
        detail::check(entitle_activate_code(get(), code.c_str(), detail::c_str_or_null(seat_name)));
    }
    void activate_account(const std::string &email, const std::string &password,
                          const std::optional<std::string> &seat_name = std::nullopt) {
        detail::check(entitle_activate_account(get(), email.c_str(), password.c_str(),
                                               detail::c_str_or_null(seat_name)));
    }
    void state() { detail::check(entitle_state(get())); }
    void refresh() { detail::check(entitle_refresh(get())); }
    void ensure_lease() { detail::check(entitle_ensure_lease(get())); }
    void record_usage(const std::string &feature, uint32_t amount = 1) {
        detail::check(entitle_record_usage(get(), feature.c_str(), amount));
    }
    void deactivate() { detail::check(entitle_deactivate(get())); }
    void start_refresher() { detail::check(entitle_start_refresher(get())); }

    bool is_enabled(const std::string &feature) const {
        int enabled = 0;
        detail::check(entitle_is_enabled(get(), feature.c_str(), &enabled));
        return enabled == 1;
    }
    std::optional<entitle_feature> feature(const std::string &key) const {
        entitle_feature out{};
        entitle_status status = entitle_get_feature(get(), key.c_str(), &out);
        if (status == ENTITLE_NOT_FOUND) return std::nullopt;
        detail::check(status);
        return out;
    }
    std::optional<std::string> attribute_json(const std::string &key) const {
        char *out = nullptr;
        entitle_status status = entitle_attribute_json(get(), key.c_str(), &out);
        if (status == ENTITLE_NOT_FOUND) return std::nullopt;
        detail::check(status);
        return detail::take(out);
    }
    std::string lease_json() const {
        char *out = nullptr;
        detail::check(entitle_lease_json(get(), &out));
        return detail::take(out);
    }
    std::string lease_token() const {
        char *out = nullptr;
        detail::check(entitle_lease_token(get(), &out));
        return detail::take(out);
    }

    std::string write_activation_request(const std::string &code,
                                         const std::optional<std::string> &seat_name = std::nullopt) {
        char *out = nullptr;
        detail::check(entitle_write_activation_request(get(), code.c_str(), detail::c_str_or_null(seat_name), &out));
        return detail::take(out);
    }
    void load_licence_file(const std::string &licence) {
        detail::check(entitle_load_licence_file(get(), licence.c_str()));
    }
    std::string write_deactivation_request() {
        char *out = nullptr;
        detail::check(entitle_write_deactivation_request(get(), &out));
        return detail::take(out);
    }

    entitle_client *get() const noexcept { return handle_.get(); }

private:
    struct Free {
        void operator()(entitle_client *client) const noexcept { entitle_client_free(client); }
    };
    std::unique_ptr<entitle_client, Free> handle_;
};

// Pool units held for a scope: checked out on construction, returned on destruction (a failed
// return there is swallowed, as destructors must not throw; call give_back() to see it).
class Checkout {
public:
    Checkout(Client &client, std::string feature, uint32_t count = 1)
        : client_(&client), feature_(std::move(feature)), count_(count) {
        detail::check(entitle_checkout(client_->get(), feature_.c_str(), count_));
    }
    Checkout(const Checkout &) = delete;
    Checkout &operator=(const Checkout &) = delete;
    Checkout(Checkout &&other) noexcept
        : client_(std::exchange(other.client_, nullptr)), feature_(std::move(other.feature_)), count_(other.count_) {}
    ~Checkout() {
        if (client_) entitle_return(client_->get(), feature_.c_str(), count_);
    }
    void give_back() {
        if (client_) {
            Client *client = std::exchange(client_, nullptr);
            detail::check(entitle_return(client->get(), feature_.c_str(), count_));
        }
    }

private:
    Client *client_;
    std::string feature_;
    uint32_t count_;
};

} // namespace entitle

#endif // ENTITLE_HPP
