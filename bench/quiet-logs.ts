/**
 * The gateway's logs at ERROR for the benchmarks, unless POWERTOOLS_LOG_LEVEL says otherwise:
 * a line per task at 10,000 tasks is work the measured runs should not do. Imported before
 * anything that loads the gateway's logger, which reads the level once, when it is made.
 */
process.env.POWERTOOLS_LOG_LEVEL ??= 'ERROR';
