// A PostgreSQL server of a test's own (pg_cluster.sh), for tests that stop,
// crash or reconfigure it and so cannot share the suite's server.
#pragma once

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace tokenmeter::test {

class OwnCluster {
public:
    OwnCluster() {
        // Directly under /tmp: the `postgres` user must reach it when the
        // tests run as root.
        std::string pattern = "/tmp/tokenmeter-pgown-XXXXXX";
        if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp");
        dir_ = pattern;
        start();
        std::ifstream in(dir_ + "/url");
        std::getline(in, url_);
    }
    ~OwnCluster() { (void)script("destroy"); }
    OwnCluster(const OwnCluster&) = delete;
    OwnCluster& operator=(const OwnCluster&) = delete;

    const std::string& url() const { return url_; }
    const std::string& dir() const { return dir_; }

    void start() {
        if (script("start") != 0) throw std::runtime_error("pg_cluster.sh start failed");
    }
    // "immediate" is a crash: no checkpoint, connections cut, recovery from
    // the WAL at the next start.
    void stop(const std::string& mode) {
        if (script("stop", mode) != 0) throw std::runtime_error("pg_cluster.sh stop failed");
    }

private:
    int script(const std::string& command, const std::string& mode = "") const {
        const std::string line = "bash '" TM_PG_CLUSTER_SCRIPT "' " + command + " '" + dir_ + "' " + mode + " >/dev/null";
        return std::system(line.c_str());
    }

    std::string dir_;
    std::string url_;
};

}  // namespace tokenmeter::test
