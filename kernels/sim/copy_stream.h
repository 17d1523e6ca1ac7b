// copy_stream.h: CUDA's second stream and its events, emulated: the copy stream that batch uploads
// run on (engine/cuda/copy_stream.h) beside the compute stream, where every kernel runs.
//
// On the sim the compute stream has no queue: a launch has finished when it returns. The copy
// stream does have one, so that the order between the two streams is not free: its operations
// run in issue order, at a point the emulator order (runtime.h Order) chooses within what CUDA
// allows:
//   Order::forward  at once, when issued: the earliest a GPU could run them (the copy wins);
//   Order::reverse  only when something waits for them: the compute stream or the host waiting
//                   on an event recorded behind them, or a device synchronize: the latest.
// A kernel that reads a buffer the copy stream writes, without the compute stream waiting for
// that copy's event, therefore reads the buffer's old contents in reverse order: a missing wait
// gives a wrong result on the sim, as it would (sometimes) on a GPU. An event recorded on the
// compute stream is complete when recorded (everything issued before it has run), so the copy
// stream's waits on it cost nothing here; what they guard against on a GPU, a copy overwriting a
// buffer a running kernel still reads, cannot happen on the sim.
#pragma once
#include <cstdint>

#include "kernels/sim/runtime.h"

namespace forge::sim {

// Queues `operation` on the copy stream (in forward order: runs it now); returns its position,
// the count of copy-stream operations issued so far, it included.
uint64_t copy_stream_issue(Operation operation);
// Operations issued to the copy stream so far: an event recorded there now completes at this one.
uint64_t copy_stream_position();
// Runs the copy stream's queued operations up to `position` (an event's), oldest first.
void copy_stream_run_through(uint64_t position);
// Whether every operation up to `position` has run.
bool copy_stream_done(uint64_t position);

}  // namespace forge::sim
