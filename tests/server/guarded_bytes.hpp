// Bytes of which only a prefix can be read: the rest lies in pages mapped
// PROT_NONE, so code that reads past the prefix stops the test process with
// a message saying so. It bounds the bytes some code reads, which, unlike
// the time the code takes, does not depend on how busy the machine is.
#pragma once

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <string_view>

namespace tokenmeter::test {

class GuardedBytes {
public:
    // A copy of `bytes` whose first `readable` bytes can be read, and no more.
    GuardedBytes(std::string_view bytes, std::size_t readable) : size_(bytes.size()) {
        if (readable >= bytes.size()) throw std::invalid_argument("GuardedBytes: nothing to guard");
        const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
        // Placed so that byte `readable` starts a page.
        const std::size_t offset = (page - readable % page) % page;
        mapped_bytes_ = (offset + bytes.size() + page - 1) / page * page;
        void* mapped = ::mmap(nullptr, mapped_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mapped == MAP_FAILED) throw std::runtime_error("GuardedBytes: mmap");
        mapped_ = static_cast<char*>(mapped);
        data_ = mapped_ + offset;
        std::memcpy(data_, bytes.data(), bytes.size());
        char* guarded = data_ + readable;
        if (::mprotect(guarded, mapped_bytes_ - static_cast<std::size_t>(guarded - mapped_), PROT_NONE) != 0) {
            ::munmap(mapped_, mapped_bytes_);
            throw std::runtime_error("GuardedBytes: mprotect");
        }
        // A read of the guarded pages is a bug in the code under test: say so
        // instead of a bare "Segmentation fault".
        struct sigaction on_fault {};
        on_fault.sa_handler = [](int) {
            static constexpr char message[] =
                "\nGuardedBytes: the code under test read past the bytes it may read (SIGSEGV)\n";
            (void)!::write(STDERR_FILENO, message, sizeof message - 1);
            ::_exit(3);
        };
        ::sigaction(SIGSEGV, &on_fault, &previous_);
    }

    ~GuardedBytes() {
        ::sigaction(SIGSEGV, &previous_, nullptr);
        ::munmap(mapped_, mapped_bytes_);
    }

    GuardedBytes(const GuardedBytes&) = delete;
    GuardedBytes& operator=(const GuardedBytes&) = delete;

    std::string_view view() const { return {data_, size_}; }

private:
    std::size_t size_;
    std::size_t mapped_bytes_ = 0;
    char* mapped_ = nullptr;
    char* data_ = nullptr;
    struct sigaction previous_ {};
};

}  // namespace tokenmeter::test
