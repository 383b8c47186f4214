"""The native lab: two Yubin sites (alpha.test, beta.test), a Redis per site and NSD as real processes.

`yubin lab up` (`make lab`) prepares the lab directory (credentials, TLS certificate, NSD config, Procfile),
runs everything under its supervisor (which restarts a process that dies), creates the domains and demo users through the admin API and writes
`lab-info.json`, which `yubin lab info`, the end-to-end tests and the benchmark read.
"""
