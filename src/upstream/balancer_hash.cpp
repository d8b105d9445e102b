// Key-based balancing: the stable 64-bit hash, the request's consistent-hash key, and the
// Maglev consistent-hash balancer.
//
// Maglev (Eisenbud et al., NSDI 2016) fills a prime-sized lookup table by letting each
// endpoint claim slots along its own permutation of the table, taking turns. A request's key
// picks a slot; lookups are O(1) and the table spreads keys evenly. Because each permutation
// derives from the endpoint's key ("ip:port"), not from its position in the list, removing
// one endpoint mostly reassigns only the slots it held.
#include <bit>
#include <cstring>
#include <vector>

#include "upstream/balancer.hpp"
#include "upstream/balancer_detail.hpp"

namespace sentinel::upstream {

// ---------------------------------------------------------------------------------- hash

namespace {

// XXH64, written from the published algorithm description: a well-studied, fast,
// platform-independent 64-bit hash. Inputs are read little-endian explicitly so the value is
// the same on every host, as sticky-cookie tokens must be across processes and upgrades.
constexpr std::uint64_t prime1 = 0x9E3779B185EBCA87ULL;
constexpr std::uint64_t prime2 = 0xC2B2AE3D27D4EB4FULL;
constexpr std::uint64_t prime3 = 0x165667B19E3779F9ULL;
constexpr std::uint64_t prime4 = 0x85EBCA77C2B2AE63ULL;
constexpr std::uint64_t prime5 = 0x27D4EB2F165667C5ULL;

std::uint64_t read64(const unsigned char* p) {
    std::uint64_t v;
    std::memcpy(&v, p, sizeof v);
    if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
    return v;
}

std::uint32_t read32(const unsigned char* p) {
    std::uint32_t v;
    std::memcpy(&v, p, sizeof v);
    if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap32(v);
    return v;
}

std::uint64_t xx_round(std::uint64_t acc, std::uint64_t input) {
    acc += input * prime2;
    acc = std::rotl(acc, 31);
    return acc * prime1;
}

std::uint64_t xx_merge(std::uint64_t acc, std::uint64_t v) {
    acc ^= xx_round(0, v);
    return acc * prime1 + prime4;
}

}  // namespace

namespace detail {

std::uint64_t hash_bytes_seeded(std::string_view data, std::uint64_t seed) {
    const auto* p = reinterpret_cast<const unsigned char*>(data.data());
    const std::size_t len = data.size();
    const unsigned char* const end = p + len;
    std::uint64_t h;
    if (len >= 32) {
        std::uint64_t v1 = seed + prime1 + prime2;
        std::uint64_t v2 = seed + prime2;
        std::uint64_t v3 = seed;
        std::uint64_t v4 = seed - prime1;
        const unsigned char* const limit = end - 32;
        do {
            v1 = xx_round(v1, read64(p));
            v2 = xx_round(v2, read64(p + 8));
            v3 = xx_round(v3, read64(p + 16));
            v4 = xx_round(v4, read64(p + 24));
            p += 32;
        } while (p <= limit);
        h = std::rotl(v1, 1) + std::rotl(v2, 7) + std::rotl(v3, 12) + std::rotl(v4, 18);
        h = xx_merge(h, v1);
        h = xx_merge(h, v2);
        h = xx_merge(h, v3);
        h = xx_merge(h, v4);
    } else {
        h = seed + prime5;
    }
    h += len;
    for (; end - p >= 8; p += 8) {
        h ^= xx_round(0, read64(p));
        h = std::rotl(h, 27) * prime1 + prime4;
    }
    if (end - p >= 4) {
        h ^= static_cast<std::uint64_t>(read32(p)) * prime1;
        h = std::rotl(h, 23) * prime2 + prime3;
        p += 4;
    }
    for (; p < end; ++p) {
        h ^= static_cast<std::uint64_t>(*p) * prime5;
        h = std::rotl(h, 11) * prime1;
    }
    h ^= h >> 33;
    h *= prime2;
    h ^= h >> 29;
    h *= prime3;
    h ^= h >> 32;
    return h;
}

}  // namespace detail

std::uint64_t hash_bytes(std::string_view data) { return detail::hash_bytes_seeded(data, 0); }

// ------------------------------------------------------------------------ request key

namespace {

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Value of the first `name=value` pair in `list` (pairs separated by `sep`); names compare
// exactly, as cookie and query names are case-sensitive.
std::optional<std::string_view> find_pair(std::string_view list, char sep, std::string_view name,
                                          bool trim) {
    while (true) {
        const auto cut = list.find(sep);
        std::string_view item = list.substr(0, cut);
        if (trim) item = trim_ows(item);
        const auto eq = item.find('=');
        const std::string_view item_name = item.substr(0, eq);
        // A query parameter without '=' is present with an empty value; a cookie without
        // one is malformed and skipped.
        if (item_name == name && (eq != std::string_view::npos || !trim)) {
            return eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1);
        }
        if (cut == std::string_view::npos) return std::nullopt;
        list.remove_prefix(cut + 1);
    }
}

}  // namespace

std::optional<std::uint64_t> request_hash(const config::hash_key_config& key,
                                          const http1::request_head& request,
                                          std::string_view client_ip, std::string_view path) {
    using config::hash_source;
    switch (key.source) {
        case hash_source::header:
            for (const auto& h : request.headers) {
                if (http1::iequals(h.name, key.name)) return hash_bytes(h.value);
            }
            return std::nullopt;
        case hash_source::cookie:
            // Several Cookie fields may arrive (HTTP/2 splits them); search them in order.
            for (const auto& h : request.headers) {
                if (!http1::iequals(h.name, "cookie")) continue;
                if (auto v = find_pair(h.value, ';', key.name, /*trim=*/true)) return hash_bytes(*v);
            }
            return std::nullopt;
        case hash_source::client_ip:
            if (client_ip.empty()) return std::nullopt;
            return hash_bytes(client_ip);
        case hash_source::path:
            return hash_bytes(path);
        case hash_source::query:
            if (request.query.empty()) return std::nullopt;
            if (auto v = find_pair(request.query, '&', key.name, /*trim=*/false)) return hash_bytes(*v);
            return std::nullopt;
    }
    return std::nullopt;
}

// ---------------------------------------------------------------------------- Maglev

namespace {

using detail::usable;
using detail::weight_of;

bool is_prime(std::uint64_t n) {
    if (n < 2) return false;
    for (std::uint64_t d = 2; d * d <= n; ++d) {
        if (n % d == 0) return false;
    }
    return true;
}

// At least 100 slots per endpoint keeps each endpoint's share within about 1% of even;
// 65537 is the floor so small groups still spread keys finely.
std::uint64_t table_size_for(std::size_t endpoints) {
    std::uint64_t m = std::max<std::uint64_t>(65537, 100 * static_cast<std::uint64_t>(endpoints));
    while (!is_prime(m)) ++m;
    return m;
}

struct maglev_table {
    std::vector<std::uint32_t> slots;  // endpoint index per slot
};

std::shared_ptr<const maglev_table> build_maglev(std::span<const endpoint> endpoints) {
    auto table = std::make_shared<maglev_table>();
    const std::size_t n = endpoints.size();
    if (n == 0) return table;
    const std::uint64_t m = table_size_for(n);
    constexpr std::uint32_t empty = UINT32_MAX;
    table->slots.assign(m, empty);

    struct cursor {
        std::uint64_t position;  // next candidate slot on this endpoint's permutation
        std::uint64_t skip;
        std::uint64_t filled = 0;
    };
    std::vector<cursor> cursors;
    cursors.reserve(n);
    std::uint64_t max_weight = 0;
    for (const auto& e : endpoints) {
        // Two independent hashes of the endpoint's key: where its permutation starts and its
        // stride (in [1, m-1], coprime to the prime m, so the walk visits every slot).
        const std::uint64_t offset = detail::hash_bytes_seeded(e.key, 0x6d61676c65763031ULL) % m;
        const std::uint64_t skip = detail::hash_bytes_seeded(e.key, 0x736b697073656564ULL) % (m - 1) + 1;
        cursors.push_back({offset, skip});
        max_weight = std::max(max_weight, weight_of(e));
    }

    // Weighted turns: in round t an endpoint of weight w claims a slot when it holds fewer
    // than t·w/max_weight, so the heaviest claims every round and a half-weight one every
    // other round; slot counts end up proportional to weights.
    std::uint64_t filled = 0;
    for (std::uint64_t round = 1; filled < m; ++round) {
        for (std::size_t i = 0; i < n && filled < m; ++i) {
            auto& c = cursors[i];
            if ((c.filled + 1) * max_weight > round * weight_of(endpoints[i])) continue;
            while (table->slots[c.position] != empty) {
                c.position += c.skip;
                if (c.position >= m) c.position -= m;
            }
            table->slots[c.position] = static_cast<std::uint32_t>(i);
            ++c.filled;
            ++filled;
        }
    }
    return table;
}

class maglev_balancer final : public balancer {
public:
    maglev_balancer(std::shared_ptr<const maglev_table> table,
                    std::shared_ptr<const detail::weighted_sampler> sampler, std::uint64_t seed)
        : table_(std::move(table)), sampler_(std::move(sampler)), rng_(seed) {}

    int pick(const pick_context& ctx) override {
        // A request without a key has nothing to be consistent about.
        if (!ctx.hash) return sampler_->sample(rng_, ctx);
        const auto& slots = table_->slots;
        if (slots.empty()) return -1;
        const auto endpoints = sampler_->endpoints();
        std::size_t slot = static_cast<std::size_t>(*ctx.hash % slots.size());
        const std::uint32_t first = slots[slot];
        if (usable(endpoints[first], first, ctx)) return static_cast<int>(first);

        // The key's endpoint is down or already tried: the next usable endpoint along the
        // table is as stable a second choice as the first (the same for every worker and
        // every request with this key). Availability is read once per endpoint so the walk
        // costs memory reads only, and an all-down group is detected before walking at all.
        usable_.resize(endpoints.size());
        bool any = false;
        for (std::size_t i = 0; i < endpoints.size(); ++i) {
            usable_[i] = usable(endpoints[i], i, ctx) ? 1 : 0;
            any = any || usable_[i] != 0;
        }
        if (!any) return -1;
        for (std::size_t step = 1; step < slots.size(); ++step) {
            if (++slot == slots.size()) slot = 0;
            if (usable_[slots[slot]] != 0) return static_cast<int>(slots[slot]);
        }
        // Only endpoints that hold no slot are usable (a weight tiny next to the others can
        // round down to none): still answer, deterministically.
        for (std::size_t i = 0; i < endpoints.size(); ++i) {
            if (usable_[i] != 0) return static_cast<int>(i);
        }
        return -1;
    }

private:
    std::shared_ptr<const maglev_table> table_;
    std::shared_ptr<const detail::weighted_sampler> sampler_;
    detail::rng rng_;
    std::vector<unsigned char> usable_;  // scratch for the fallback walk (this worker only)
};

class maglev_factory final : public balancer_factory {
public:
    explicit maglev_factory(std::span<const endpoint> endpoints)
        : table_(build_maglev(endpoints)),
          sampler_(std::make_shared<const detail::weighted_sampler>(endpoints)) {}

    std::unique_ptr<balancer> make(std::uint64_t seed) const override {
        return std::make_unique<maglev_balancer>(table_, sampler_, seed);
    }

private:
    std::shared_ptr<const maglev_table> table_;
    std::shared_ptr<const detail::weighted_sampler> sampler_;
};

}  // namespace

namespace detail {

std::unique_ptr<balancer_factory> make_consistent_hash_factory(std::span<const endpoint> endpoints) {
    return std::make_unique<maglev_factory>(endpoints);
}

}  // namespace detail

}  // namespace sentinel::upstream
