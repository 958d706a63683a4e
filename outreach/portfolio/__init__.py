"""The portfolio: importing the system of record's files, the generated demo portfolio, quarantine."""
