// Boost.Asio's implementation, compiled once for the whole program
// (BOOST_ASIO_SEPARATE_COMPILATION is set project-wide in the top-level CMakeLists.txt),
// including its OpenSSL stream (TLS listeners and upstreams).
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
