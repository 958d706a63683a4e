"""The checks a rule names: pure functions of a rule, a step, the account's facts and the
judging context (``base``), by kind: holds, status and destination (``standing``), Regulation F's
validation (``validation``), the time of day (``time_of_day``) and frequency (``frequency``);
the table of them by name is ``registry``."""
