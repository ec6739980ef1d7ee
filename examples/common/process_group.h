#pragma once
// The data-parallel process group of an example binary (optim/dist.h, docs/data_parallel.md), started
// once by run_main (cli.h): MPI_Init when mpirun started the program, nothing otherwise. Ranks other
// than 0 print nothing (their output would repeat rank 0's, and their progress bars would interleave
// with it) except their own error line.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <iostream>
#include <string>

#include "optim/dist.h"

namespace lowrank::examples {

class ProcessGroup {
 public:
  ProcessGroup(int* argc, char*** argv) {
    optim::dist::init(argc, argv);
    if (optim::dist::is_root()) return;
    std::fflush(nullptr);
    std::cout.flush();
    error_fd() = dup(STDERR_FILENO);
    const int null = open("/dev/null", O_WRONLY);
    if (null >= 0) {
      dup2(null, STDOUT_FILENO);
      dup2(null, STDERR_FILENO);
      close(null);
    }
  }
  // MPI_Finalize waits for every rank: on an error (the stack unwinding) run_main aborts the group
  // instead, since the other ranks may be waiting in a collective this rank will never join.
  ~ProcessGroup() {
    if (std::uncaught_exceptions() == 0) optim::dist::finalize();
  }
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  // stderr as it was before a non-root rank silenced it.
  static int& error_fd() {
    static int fd = STDERR_FILENO;
    return fd;
  }
};

// One line "error: <reason>" on the real stderr; a rank other than 0 names itself.
inline void print_error_line(const std::string& reason) {
  const int r = optim::dist::rank();
  const std::string line = "error: " + (r > 0 ? "rank " + std::to_string(r) + ": " : std::string()) + reason + "\n";
  std::fflush(nullptr);
  std::cout.flush();
  if (write(ProcessGroup::error_fd(), line.data(), line.size()) < 0) std::perror("write");
}

}  // namespace lowrank::examples
