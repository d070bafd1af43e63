#pragma once
// Result<T>: a value or an Error. Core's public API never throws; fallible
// functions return one of these and the app/CLI turn errors into dialogs or
// exit codes.
#include <string>
#include <utility>
#include <variant>

namespace qs {

enum class ErrorCode {
  Io,           // the OS refused (open, read, mmap, write, rename)
  Format,       // the bytes do not follow the format they claim
  Unsupported,  // well-formed but something we cannot handle (yet)
  InvalidArgument,
  Cancelled,
  Backend,      // a compute backend failed (e.g. CUDA error)
};

struct Error {
  ErrorCode code = ErrorCode::Format;
  std::string message;  // says what is wrong, and where (file, tensor, field)

  static Error io(std::string m) { return {ErrorCode::Io, std::move(m)}; }
  static Error format(std::string m) { return {ErrorCode::Format, std::move(m)}; }
  static Error unsupported(std::string m) { return {ErrorCode::Unsupported, std::move(m)}; }
  static Error invalid(std::string m) { return {ErrorCode::InvalidArgument, std::move(m)}; }
  static Error cancelled() { return {ErrorCode::Cancelled, "cancelled"}; }
  static Error backend(std::string m) { return {ErrorCode::Backend, std::move(m)}; }
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}     // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : err_(std::move(error)), ok_(false) {}  // NOLINT
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return err_; }

 private:
  Error err_;
  bool ok_ = true;
};

}  // namespace qs
