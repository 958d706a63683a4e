"""Agency placement: eligibility, placement and recall files, agency returns."""
