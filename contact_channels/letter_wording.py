"""The wording of a letter's structured blocks (the labels that frame the figures the hooks
computed, in ``en`` and ``zh``) and how a date is written in each language. Imports nothing
from ``outreach`` or ``policies``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

# The template text (operations') carries the letter's message; these labels frame the figures
# the hooks computed. Reg F model notice wording (12 CFR 1006 appendix B) where it applies.
LABELS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "page": "Page {n}",
        "account_ending": "Account ending {last4}",
        "date": "{month} {day}, {year}",
        "details": "About the debt",
        "collector": "Debt collector",
        "creditor_then": "Creditor as of {date}",
        "creditor_now": "Current creditor",
        "account": "Account number",
        "itemization": "As of {date}, you owed:",
        "between": "Between {date} and today:",
        "interest": "You were charged this amount in interest:",
        "fees": "You were charged this amount in fees:",
        "payments": "You paid or were credited this amount toward the debt:",
        "total_now": "Total amount of the debt now:",
        "deadline": "Call or write to us by {date} to dispute all or part of the debt.",
        "deadline_body": "If you write to us by {date}, we must stop collection on any amount "
        "you dispute until we send you information that shows you owe the debt. You may use "
        "the form below or write to us without the form. You may also include supporting "
        "documents.",
        "original_creditor": "Write to ask for the name and address of the original creditor, "
        "if different from the current creditor. If you write by {date}, we must stop "
        "collection until we send you that information.",
        "assume": "If you do not dispute the debt by {date}, we will assume that our "
        "information is correct.",
        "cfpb": "Go to www.cfpb.gov/debt-collection to learn more about your rights under "
        "federal law.",
        "form_title": "How do you want to respond?",
        "form_cut": "- - - - - - - - - - Detach and return this part - - - - - - - - - -",
        "form_intro": "Check all that apply. I want to dispute the debt because I think:",
        "form_not_mine": "[  ] This is not my debt.",
        "form_amount": "[  ] The amount is wrong.",
        "form_other": "[  ] Other (please describe on the back or attach additional information).",
        "form_creditor": "[  ] I want you to send me the name and address of the original "
        "creditor.",
        "form_enclosed": "[  ] I enclosed this amount: ______________",
        "form_from": "From:",
        "form_mail": "Mail this form to:",
        "amounts": "Amounts as of {date}",
        "past_due": "Amount past due",
        "balance": "Current balance",
        "due_date": "Oldest unpaid due date",
        "days_past_due": "Days past due",
        "plans": "Repayment plans we can offer",
        "plan_basis_past_due": "Each plan spreads the amount past due, {amount}, over monthly "
        "payments.",
        "plan_basis_balance": "Each plan spreads the balance, {amount}, over monthly payments.",
        "plan": "Plan",
        "plan_months": "{months} monthly payments",
        "plan_monthly": "Monthly payment",
        "plan_last": "Final payment",
        "plan_total": "Total",
        "plan_first_due": "First payment due",
        "plan_last_due": "Last payment due",
        "plan_accept": "To accept a plan, call {phone} or write to us by {date}.",
        "verification": "Verification of the debt",
        "verification_disputed": "You disputed this debt on {date}. This is the verification "
        "of the debt: what you owed on the itemization date, what has changed since, and what "
        "you owe now.",
        "original_creditor_head": "The original creditor",
        "original_creditor_is": "You asked for the name and address of the original creditor: "
        "{name}",
        "original_creditor_same": "You asked for the name and address of the original "
        "creditor: the original creditor is the current creditor, {name}, whose details are "
        "given above.",
        "cn_rights": "Your rights",
        "cn_check": "You can check your account's transactions and the amount owed by calling "
        "{phone} or in {creditor}'s online and mobile banking.",
        "cn_object": "If you believe the account details or the amount are wrong, call {phone} "
        "or write to us: we will check and reply to you.",
        "cn_conduct": "We collect only from you. We do not tell anyone unconnected with the debt "
        "about it, and we do not contact you between 22:00 and 08:00.",
        "cn_complain": "You may complain to us about how we collect, or to the National "
        "Financial Regulatory Administration and its local offices (consumer hotline 12378).",
        "cn_contact": "Contact in China: {phone}",
    },
    "zh": {
        "page": "第 {n} 页",
        "account_ending": "账户尾号 {last4}",
        "date": "{year}年{month_n}月{day}日",
        "details": "债务信息",
        "collector": "债务催收方",
        "creditor_then": "截至{date}的债权人",
        "creditor_now": "当前债权人",
        "account": "账号",
        "itemization": "截至{date}，您的欠款为：",
        "between": "自{date}至今：",
        "interest": "产生的利息：",
        "fees": "产生的费用：",
        "payments": "您已还款或获得的抵扣：",
        "total_now": "当前欠款总额：",
        "deadline": "如需对全部或部分债务提出异议，请于{date}前致电或致函我们。",
        "deadline_body": "如您在{date}前书面提出异议，我们将在向您提供证明您欠款的材料之前，"
        "停止对有异议金额的催收。您可以使用下方表格，也可以不使用表格直接致函我们，并可附上证明材料。",
        "original_creditor": "如原始债权人与当前债权人不同，您可以书面要求我们提供原始债权人的名称和地址。"
        "如您在{date}前提出，我们将在提供该信息之前停止催收。",
        "assume": "如您在{date}前未提出异议，我们将视为我们的信息无误。",
        "cfpb": "请访问 www.cfpb.gov/debt-collection 了解您依据美国联邦法律享有的权利。",
        "form_title": "您希望如何回复？",
        "form_cut": "- - - - - - - - - - 请沿此线撕下并寄回 - - - - - - - - - -",
        "form_intro": "请勾选所有适用项。我对该债务提出异议，因为我认为：",
        "form_not_mine": "[  ] 这不是我的债务。",
        "form_amount": "[  ] 金额有误。",
        "form_other": "[  ] 其他（请在背面说明或另附材料）。",
        "form_creditor": "[  ] 请向我提供原始债权人的名称和地址。",
        "form_enclosed": "[  ] 随函附上还款金额：______________",
        "form_from": "寄件人：",
        "form_mail": "请将本表寄至：",
        "amounts": "截至{date}的金额",
        "past_due": "逾期金额",
        "balance": "当前余额",
        "due_date": "最早未还款到期日",
        "days_past_due": "逾期天数",
        "plans": "可供选择的分期还款方案",
        "plan_basis_past_due": "以下方案将逾期金额 {amount} 按月分期偿还。",
        "plan_basis_balance": "以下方案将账户余额 {amount} 按月分期偿还。",
        "plan": "方案",
        "plan_months": "分{months}期按月还款",
        "plan_monthly": "每期还款",
        "plan_last": "末期还款",
        "plan_total": "合计",
        "plan_first_due": "首期还款日",
        "plan_last_due": "末期还款日",
        "plan_accept": "如接受任一方案，请于{date}前致电{phone}或致函我们。",
        "verification": "债务核实",
        "verification_disputed": "您于{date}对该债务提出了异议。以下为该债务的核实信息：您在明细日期的欠款金额、"
        "此后的变动以及当前欠款金额。",
        "original_creditor_head": "原始债权人",
        "original_creditor_is": "您要求提供原始债权人的名称和地址：{name}",
        "original_creditor_same": "您要求提供原始债权人的名称和地址：原始债权人即当前债权人{name}，其信息见上文。",
        "cn_rights": "您的权利",
        "cn_check": "您可以致电{phone}或通过{creditor}网上银行、手机银行查询账户交易明细和欠款金额。",
        "cn_object": "如您认为账户信息或欠款金额有误，请致电{phone}或书面向我们提出异议，我们将核实后答复您。",
        "cn_conduct": "我们仅向您本人催收，不会向与债务无关的第三人透露您的债务信息，"
        "不会在22:00至次日08:00之间联系您。",
        "cn_complain": "如对我们的催收行为有意见，您可以向我们投诉，也可以向国家金融监督管理总局及其派出机构反映"
        "（金融消费者投诉热线12378）。",
        "cn_contact": "境内联系电话：{phone}",
    },
}

_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip


def _lang(language: str) -> str:
    return "zh" if language.lower().startswith("zh") else "en"


def format_date(value: str | dt.date, language: str) -> str:
    """A date as the letter prints it (``November 23, 2026``, ``2026年11月23日``), without the
    process locale."""
    day = value if isinstance(value, dt.date) else dt.date.fromisoformat(value)
    return LABELS[_lang(language)]["date"].format(
        year=day.year, month=_MONTHS[day.month - 1], month_n=day.month, day=day.day
    )
