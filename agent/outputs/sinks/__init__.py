"""Alert destinations: stdout, file, syslog, http, program."""
