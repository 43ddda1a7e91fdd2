/* global process, setTimeout */
// Loaded with `node --import` into a real server process by test/attack/tripwire.test.ts, never by
// production code: on a signal it makes an error reach the process's last-resort handlers, so the test
// can check that the tripwire logs at fatal and exits 1.
process.on('SIGUSR2', () => {
  setTimeout(() => {
    throw new Error('tripwire test: thrown from a timer');
  }, 0);
});
process.on('SIGHUP', () => {
  void Promise.reject(new Error('tripwire test: a rejection nobody handles'));
});
