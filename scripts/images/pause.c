/*
 * The pod sandbox ("pause") process for registry.k8s.io/pause, built by
 * scripts/images/build.sh with `gcc -static`: it holds the pod's namespaces,
 * reaps zombies (it is PID 1 when the pod shares its PID namespace) and exits
 * cleanly on SIGINT/SIGTERM, like the upstream Kubernetes pause binary.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef VERSION
#define VERSION "flotilla"
#endif

static void on_term(int signo) {
  fprintf(stderr, "pause: shutting down, got signal %d\n", signo);
  exit(0);
}

static void on_child(int signo) {
  (void)signo;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "-v") == 0) {
    printf("pause.c %s\n", VERSION);
    return 0;
  }
  if (getpid() != 1) fprintf(stderr, "pause: warning: not running as PID 1\n");

  struct sigaction down = {0}, reap = {0};
  down.sa_handler = on_term;
  if (sigaction(SIGINT, &down, NULL) < 0 || sigaction(SIGTERM, &down, NULL) < 0) return 1;
  reap.sa_handler = on_child;
  reap.sa_flags = SA_NOCLDSTOP;
  if (sigaction(SIGCHLD, &reap, NULL) < 0) return 2;

  for (;;) pause();
  return 42;
}
