"""The resolution loop: promises to pay, repayment arrangements (instalment plans and
settlements) and their offers, payments and their allocation, hardship, causes of delinquency
and disputes' verification. What the consumer does changes what the ladder does next: the
kernel's facts read the states kept here (outreach.kernel.facts), and every change is a
``resolution_event`` saying who and why."""
