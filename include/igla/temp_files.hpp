// igla: temporary files being written right now, for a program's signal handlers.
//
// Index::save writes OUT.tmp.XXXXXX next to OUT and renames it into place. A process killed by
// SIGINT or SIGTERM in between would leave the temporary file behind; a program that installs
// handlers for those signals calls remove_pending_temp_files() in them (the igla CLI does, then
// re-raises the signal). Stale temporary files of a killed writer (SIGKILL, power loss) are
// removed by the next save to the same output: each writer holds an flock on its temporary file,
// so a file nobody holds a lock on is known to be abandoned.
#pragma once

namespace igla {

// Unlinks every temporary file the library is writing at this moment. Async-signal-safe (only
// atomic loads and unlink(2)); the writes in progress then fail, so call it only to exit.
void remove_pending_temp_files() noexcept;

}  // namespace igla
