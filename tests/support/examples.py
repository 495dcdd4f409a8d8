"""The Segment Pardot documentation's own examples (../shared/segment-pardot-destination.md),
shared by every suite that turns them into test cases."""

#: The "Version 3" identify example.
TOM = {
    "email": "tom@example.com",
    "name": "Tom Smykowski",
    "company": "Initech, Inc",
    "department": "Customer Service",
    "years_in_business": "10",
    "notes": 'Working on a "Jump to Conclusions" mat',
    "description": "Im a people person. What the hell is wrong with you people?",
    "title": "VP of Engineering",
}

#: The "FID or ID Properties" example's Salesforce Contact id, and the lookup field one's value.
BILL_FID = "00339000033ZUR6"
BILL_ORG_ID = "1sf324fd53"
