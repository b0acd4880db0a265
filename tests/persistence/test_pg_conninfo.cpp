// Connection parameters: parsing a DSN, and pool_params mapped onto libpq's keywords.
#include <doctest/doctest.h>

#include <ostream>  // doctest prints std::error_code with it

#include "persistence/pg_conninfo.hpp"
#include "persistence/pg_pool.hpp"

using namespace mqttd::pg;

TEST_CASE("a conninfo string is parsed into keywords") {
    std::string err;
    auto ci = conninfo::parse("host=127.0.0.1 port=5433 user=root password='p w' dbname=mqtt", err);
    REQUIRE(ci);
    CHECK(ci->get("host") == "127.0.0.1");
    CHECK(ci->get("port") == "5433");
    CHECK(ci->get("password") == "p w");
    CHECK(ci->get("sslmode").empty());
    CHECK(ci->describe() == "root@127.0.0.1:5433/mqtt");

    CHECK(conninfo::parse("host=", err).has_value());  // an empty value is allowed
    CHECK_FALSE(conninfo::parse("nonsense_keyword=1", err));
    CHECK(!err.empty());
}

TEST_CASE("set replaces, and an empty value removes") {
    conninfo ci;
    ci.set("host", "a").set("port", "1").set("host", "b").set("port", "");
    CHECK(ci.entries().size() == 1);
    CHECK(ci.get("host") == "b");
}

TEST_CASE("pool_params map onto libpq keywords") {
    pool_params p;
    p.host = "db.example";
    p.port = 6543;
    p.user = "root";
    p.password = "public";
    p.database = "mqtt";
    auto plain = to_conninfo(p);
    CHECK(plain.get("host") == "db.example");
    CHECK(plain.get("port") == "6543");
    CHECK(plain.get("user") == "root");
    CHECK(plain.get("password") == "public");
    CHECK(plain.get("dbname") == "mqtt");
    CHECK(plain.get("application_name") == "mqttd");
    CHECK(plain.get("sslmode") == "disable");
    CHECK(plain.describe().find("public") == std::string::npos);  // never the password

    p.ssl_rootcert = "/etc/ca.pem";  // unused without ssl
    CHECK(to_conninfo(p).get("sslrootcert").empty());

    p.ssl = true;
    p.ssl_cert = "/etc/client.pem";
    p.ssl_key = "/etc/client.key";
    auto tls = to_conninfo(p);
    CHECK(tls.get("sslmode") == "require");
    CHECK(tls.get("sslrootcert") == "/etc/ca.pem");
    CHECK(tls.get("sslcert") == "/etc/client.pem");
    CHECK(tls.get("sslkey") == "/etc/client.key");

    p.ssl_verify = true;
    CHECK(to_conninfo(p).get("sslmode") == "verify-full");
}
