#include "ledger/receipt_signer.hpp"

#include "tokenmeter/assert.hpp"

namespace tokenmeter::ledger {

namespace {

// Receipts a signer takes at a time: enough to keep the lock off the hot path.
constexpr std::size_t receipts_per_take = 8;

}  // namespace

ReceiptSigner::ReceiptSigner(const SigningKey& key, std::size_t threads) : key_(key) {
    TM_ASSERT(threads > 0);
    for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

ReceiptSigner::~ReceiptSigner() {
    {
        std::lock_guard<std::mutex> guard(mutex_);
        stopping_ = true;
    }
    work_.notify_all();
    for (auto& thread : threads_) thread.join();
}

std::vector<std::string> ReceiptSigner::sign(const std::vector<const ReceiptClaims*>& claims) {
    std::vector<std::string> receipts(claims.size());
    if (claims.empty()) return receipts;
    std::unique_lock<std::mutex> lock(mutex_);
    TM_ASSERT(claims_ == nullptr);  // one batch at a time: the writer is one thread
    claims_ = &claims;
    receipts_ = &receipts;
    next_ = 0;
    finished_ = 0;
    work_.notify_all();
    done_.wait(lock, [&] { return finished_ == claims.size(); });
    claims_ = nullptr;
    receipts_ = nullptr;
    return receipts;
}

void ReceiptSigner::run() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
        work_.wait(lock, [this] { return stopping_ || (claims_ != nullptr && next_ < claims_->size()); });
        if (stopping_) return;
        const std::size_t first = next_;
        const std::size_t last = std::min(claims_->size(), first + receipts_per_take);
        next_ = last;
        const std::vector<const ReceiptClaims*>& claims = *claims_;
        std::vector<std::string>& receipts = *receipts_;
        lock.unlock();
        for (std::size_t i = first; i < last; ++i) receipts[i] = sign_receipt(*claims[i], key_);
        lock.lock();
        finished_ += last - first;
        if (finished_ == claims.size()) done_.notify_one();
    }
}

}  // namespace tokenmeter::ledger
