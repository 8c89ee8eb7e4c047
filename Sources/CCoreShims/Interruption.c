#include <signal.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include "Interruption.h"

static volatile sig_atomic_t leakless_interrupt_flag = 0;

static void leakless_on_interrupt(int signal_number) {
    if (leakless_interrupt_flag) {
        _exit(128 + signal_number);
    }
    leakless_interrupt_flag = 1;
    static const char note[] = "\ninterrupted: no new requests; finishing those in flight (again to quit at once)\n";
    ssize_t ignored = write(2, note, sizeof note - 1);
    (void)ignored;
}

void leakless_interrupt_install(void) {
    struct sigaction action;
    action.sa_handler = leakless_on_interrupt;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
}

int leakless_interrupted(void) { return leakless_interrupt_flag; }

void leakless_interrupt_request(void) { leakless_interrupt_flag = 1; }

// The driver: a signal it receives goes on to the stage process it is waiting for (which stops
// as after Ctrl-C and writes what finished), and is remembered so no further stage starts.
static volatile pid_t leakless_forward_pid = 0;
static volatile sig_atomic_t leakless_forward_signal = 0;

static void leakless_on_driver_signal(int signal_number) {
    leakless_forward_signal = signal_number;
    pid_t child = leakless_forward_pid;
    if (child > 0) {
        kill(child, signal_number);
    }
}

void leakless_forward_install(void) {
    struct sigaction action;
    action.sa_handler = leakless_on_driver_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGHUP, &action, NULL);
}

void leakless_forward_to(int pid) { leakless_forward_pid = (pid_t)pid; }

int leakless_forward_received(void) { return leakless_forward_signal; }

int leakless_exit_with_parent(int parent) {
#ifdef __linux__
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) {
        return -1;
    }
#endif
    // The parent may have died before the request took effect.
    return getppid() == (pid_t)parent ? 0 : 1;
}
