// exit_code.h: the exit codes every forge program returns (README "Exit codes"), here rather than
// in tools/program.h because the trainer itself returns one (a non-finite loss) and train/ cannot
// reach up into tools/.
//   0 ok, 1 error (bad data, a broken checkpoint, a failed write), 2 usage (a bad flag or value,
//   a resume with changed options), 3 a non-finite loss stopped training.
#pragma once

namespace forge::exit_code {

enum ExitCode : int { ok = 0, error = 1, usage = 2, non_finite_loss = 3 };

}  // namespace forge::exit_code
