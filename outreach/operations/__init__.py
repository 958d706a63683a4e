"""Operations: ladder diffs, redrive and the day's reporting."""
