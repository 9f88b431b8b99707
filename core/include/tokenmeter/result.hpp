// Result<T, E>: a value or an error, shaped like std::expected.
//
// GCC 12 in C++20 mode and Emscripten 3.1.6's libc++ 14 ship no <expected>, so
// the core carries this small stand-in. It keeps the same member names
// (has_value, value, error, operator bool) so a later switch is mechanical.
// Errors cross the core's API as values: the core is built without exceptions.
#pragma once

#include <type_traits>
#include <utility>
#include <variant>

#include "tokenmeter/assert.hpp"

namespace tokenmeter {

template <typename E>
struct Unexpected {
    E error;
};

template <typename E>
Unexpected<std::decay_t<E>> unexpected(E&& error) {
    return {std::forward<E>(error)};
}

template <typename T, typename E>
class [[nodiscard]] Result {
public:
    Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit like expected
    template <typename G>
    Result(Unexpected<G> failure)  // NOLINT: implicit like expected
        : state_(std::in_place_index<1>, E(std::move(failure.error))) {}

    bool has_value() const { return state_.index() == 0; }
    explicit operator bool() const { return has_value(); }

    T& value() & {
        TM_ASSERT(has_value());
        return std::get<0>(state_);
    }
    const T& value() const& {
        TM_ASSERT(has_value());
        return std::get<0>(state_);
    }
    T&& value() && {
        TM_ASSERT(has_value());
        return std::get<0>(std::move(state_));
    }
    const E& error() const {
        TM_ASSERT(!has_value());
        return std::get<1>(state_);
    }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

private:
    std::variant<T, E> state_;
};

}  // namespace tokenmeter
