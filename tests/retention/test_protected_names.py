"""Which CRM field names are taken for protected characteristics, and kept out of the model's features."""

import pytest

from retention.records import looks_protected

PROTECTED = [
    "gender", "Gender", "SeniorCitizen", "Age band", "age", "customer_age", "GenderCode", "gender_code",
    "date_of_birth", "DateOfBirth", "birth_date", "nationality_code", "is_senior", "religion_flag", "medical",
    "M/V", "Geboortedatum", "burgerlijke staat", "klant_leeftijd", "klantleeftijd", "ziekte", "klant-geslacht",
    # Dutch compounds with a stem at the start, linked by an s, and an accent dropped or kept.
    "geslachtscode", "GeslachtsCode", "Nationaliteitscode", "Leeftijdscat", "leeftijdsklasse_klant",
    "seksuele_orientatie", "Seksuele oriëntatie", "Geloofsovertuiging",
    # Gender, origin and health under other names, and vulnerability through debt.
    "aanhef", "Salutation", "titel", "geboorteplaats", "place_of_birth", "country_of_origin", "moedertaal",
    "slechthorend", "hearing_impaired", "blind", "doof", "bewindvoering", "schuldsanering", "klant_in_wsnp",
    "Geboorteplaatscode", "SchuldsaneringStatus",
]  # fmt: skip
NOT_PROTECTED = [
    # The telco sample's other columns.
    "customerID", "Partner", "Dependents", "tenure", "PhoneService", "MultipleLines", "InternetService",
    "OnlineSecurity", "StreamingTV", "Contract", "PaperlessBilling", "PaymentMethod", "MonthlyCharges",
    # Words that hold a protected word inside them, and a thing's age or health.
    "usage", "page_views", "average_bill", "storage_gb", "message_count", "passage", "dosage", "languages",
    "contract_age", "contract_age_months", "account_age", "device_age", "network_health", "toestelleeftijd",
    "subtitles", "entitled", "titelsong", "plaats", "woonplaats", "language", "taal", "lead_origin",
]  # fmt: skip


@pytest.mark.parametrize("name", PROTECTED)
def test_a_name_with_a_protected_characteristic_among_its_words_is_protected(name):
    assert looks_protected(name)


@pytest.mark.parametrize("name", NOT_PROTECTED)
def test_other_names_and_a_things_age_or_health_are_not(name):
    assert not looks_protected(name)


@pytest.mark.parametrize(
    "name",
    [
        "Age65Plus", "over65", "herkomstland", "aow_gerechtigd", "bkr_registratie", "sexe", "gndr", "yob", "birth_dt",
        "gebjaar", "geboren", "gepensioneerd", "religieus", "kerkgenootschap", "medische_indicatie", "voornaam",
        "FirstName",
    ],
)  # fmt: skip
def test_short_names_names_with_digits_and_what_stands_for_age_or_origin_are_protected(name):
    assert looks_protected(name)


@pytest.mark.parametrize("name", ["speed_100mbit", "plan5g", "has4g", "data_gb_used", "stage2", "contract_age"])
def test_digits_beside_letters_make_no_ordinary_field_protected(name):
    assert not looks_protected(name)
