#ifndef LEAKLESS_INTERRUPTION_H
#define LEAKLESS_INTERRUPTION_H

// Ctrl-C: the first SIGINT (or SIGTERM) sets a flag the stages poll, so they stop sending new
// requests and write what finished; a second one ends the process at once.
void leakless_interrupt_install(void);
int leakless_interrupted(void);
void leakless_interrupt_request(void);


// The driver's side: SIGINT, SIGTERM and SIGHUP are passed on to the stage process being
// waited for (leakless_forward_to; 0 for none) and remembered (leakless_forward_received: the
// last signal number, or 0).
void leakless_forward_install(void);
void leakless_forward_to(int pid);
int leakless_forward_received(void);

// A stage process: SIGTERM when the driver that started it dies (Linux). Returns 1 when the
// parent is no longer `parent` (it died already), 0 when set, -1 on failure.
int leakless_exit_with_parent(int parent);

#endif
