// copy_stream.cpp: the emulated copy stream (see copy_stream.h): a queue of operations, run in
// issue order at once (Order::forward) or when waited for (Order::reverse).
#include "kernels/sim/copy_stream.h"

#include <deque>
#include <mutex>

namespace forge::sim {

namespace {
std::mutex queue_mutex;
std::deque<Operation> queued;  // issued, not yet run, oldest first
uint64_t issued = 0, finished = 0;

// Runs the queued operations up to `position`, oldest first, under the queue's lock (they are
// copies: none issues to the copy stream itself), so two callers never run them out of order.
void run_through_locked(uint64_t position) {
  while (finished < position && !queued.empty()) {
    queued.front()();
    queued.pop_front();
    ++finished;
  }
}
}  // namespace

uint64_t copy_stream_issue(Operation operation) {
  std::lock_guard<std::mutex> lock(queue_mutex);
  queued.push_back(std::move(operation));
  const uint64_t position = ++issued;
  if (order() == Order::forward) run_through_locked(position);
  return position;
}

uint64_t copy_stream_position() {
  std::lock_guard<std::mutex> lock(queue_mutex);
  return issued;
}

void copy_stream_run_through(uint64_t position) {
  std::lock_guard<std::mutex> lock(queue_mutex);
  run_through_locked(position);
}

bool copy_stream_done(uint64_t position) {
  std::lock_guard<std::mutex> lock(queue_mutex);
  return finished >= position;
}

}  // namespace forge::sim
