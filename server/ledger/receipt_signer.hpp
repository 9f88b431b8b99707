// Signs a batch's receipts on threads of its own, in parallel, so the writer
// thread spends no time in Ed25519. The claims of every receipt are fixed
// when the writer decides (each `prev` hashes the previous payload, not its
// signature), so the order of signing does not matter.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tokenmeter/receipt.hpp"

namespace tokenmeter::ledger {

class ReceiptSigner {
public:
    ReceiptSigner(const SigningKey& key, std::size_t threads);
    ~ReceiptSigner();
    ReceiptSigner(const ReceiptSigner&) = delete;
    ReceiptSigner& operator=(const ReceiptSigner&) = delete;

    // The signed receipt of each claims, in order; returns when all are signed.
    std::vector<std::string> sign(const std::vector<const ReceiptClaims*>& claims);

private:
    void run();

    const SigningKey& key_;
    std::mutex mutex_;
    std::condition_variable work_;
    std::condition_variable done_;
    const std::vector<const ReceiptClaims*>* claims_ = nullptr;
    std::vector<std::string>* receipts_ = nullptr;
    std::size_t next_ = 0;
    std::size_t finished_ = 0;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace tokenmeter::ledger
