// Fork: the one rule the native objects and the Python client follow.
//
// fork() copies a process's memory but only the thread that called it. A DataLoader worker started by fork
// inherits the parent's CRT runtime, clients, requests and streams as memory, without the event loop threads
// that drive them, and with every lock as it was: one another thread held stays held forever. So:
//
// 1. What the parent made stays the parent's. Each object that owns CRT work records the process that made it
//    (MadeInProcess). In another process its destructor neither cancels, waits nor releases (each would wait
//    for threads that do not exist there); it lets the memory go. The leak is once per fork, bounded by what
//    the parent had open.
// 2. Each process makes its own. Runtime::current() builds a runtime on first use in a process, and the Python
//    S3Client builds its native client the same way (PerProcess in _per_process.py). Spawn and forkserver
//    children start with neither and take the same path; pickling carries settings, never native objects.
// 3. No lock crosses a fork held. The handlers below hold the native locks across fork() and give the child
//    consistent state; Python-side locks are replaced in the child (os.register_at_fork in _per_process.py
//    and _logging.py).
#pragma once

namespace s3tc {

// The process that made an object, for rule 1.
class MadeInProcess {
public:
    MadeInProcess();
    // False in a forked child for an object its parent made: leave such an object alone.
    bool is_current() const;
    int pid() const { return pid_; }

private:
    int pid_;
};

int current_pid();

// Registers the fork handlers of rule 3 (once; at import, before the library's init thread starts).
void install_fork_handlers();

}  // namespace s3tc
