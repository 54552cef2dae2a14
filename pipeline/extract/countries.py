"""Country names as ClinicalTrials.gov spells them, for telling a location line apart."""

from __future__ import annotations

COUNTRIES: frozenset[str] = frozenset(
    """Afghanistan|Albania|Algeria|Andorra|Angola|Argentina|Armenia|Australia|Austria|Azerbaijan|Bahamas|
Bahrain|Bangladesh|Barbados|Belarus|Belgium|Belize|Benin|Bermuda|Bhutan|Bolivia|Bosnia and Herzegovina|Botswana|
Brazil|Brunei Darussalam|Bulgaria|Burkina Faso|Burundi|Cambodia|Cameroon|Canada|Cape Verde|Central African Republic|
Chad|Chile|China|Colombia|Comoros|Congo|Congo, The Democratic Republic of the|Costa Rica|Cote D'Ivoire|Côte D'Ivoire|
Croatia|Cuba|Cyprus|Czechia|Czech Republic|Denmark|Djibouti|Dominica|Dominican Republic|Ecuador|Egypt|El Salvador|
Equatorial Guinea|Eritrea|Estonia|Eswatini|Ethiopia|Fiji|Finland|France|French Guiana|French Polynesia|Gabon|Gambia|
Georgia|Germany|Ghana|Gibraltar|Greece|Greenland|Grenada|Guadeloupe|Guam|Guatemala|Guinea|Guinea-Bissau|Guyana|
Haiti|Honduras|Hong Kong|Hungary|Iceland|India|Indonesia|Iran|Iran, Islamic Republic of|Iraq|Ireland|Israel|Italy|
Jamaica|Japan|Jersey|Jordan|Kazakhstan|Kenya|Korea, Republic of|Korea, Democratic People's Republic of|South Korea|
Kosovo|Kuwait|Kyrgyzstan|Lao People's Democratic Republic|Latvia|Lebanon|Lesotho|Liberia|Libya|Libyan Arab Jamahiriya|
Liechtenstein|Lithuania|Luxembourg|Macao|Macedonia, The Former Yugoslav Republic of|North Macedonia|Madagascar|
Malawi|Malaysia|Maldives|Mali|Malta|Martinique|Mauritania|Mauritius|Mayotte|Mexico|Moldova, Republic of|Moldova|
Monaco|Mongolia|Montenegro|Morocco|Mozambique|Myanmar|Namibia|Nepal|Netherlands|Netherlands Antilles|New Caledonia|
New Zealand|Nicaragua|Niger|Nigeria|Norway|Oman|Pakistan|Palestinian Territory, occupied|Palestine|Panama|
Papua New Guinea|Paraguay|Peru|Philippines|Poland|Portugal|Puerto Rico|Qatar|Reunion|Réunion|Romania|
Russian Federation|Russia|Rwanda|Saint Kitts and Nevis|Saint Lucia|Samoa|San Marino|Saudi Arabia|Senegal|Serbia|
Serbia and Montenegro|Former Serbia and Montenegro|Seychelles|Sierra Leone|Singapore|Slovakia|Slovenia|Solomon Islands|Somalia|South Africa|South Sudan|Spain|
Sri Lanka|Sudan|Suriname|Swaziland|Sweden|Switzerland|Syrian Arab Republic|Taiwan|Tajikistan|Tanzania|
Tanzania, United Republic of|Thailand|Timor-Leste|Togo|Trinidad and Tobago|Tunisia|Turkey|Türkiye|Turkmenistan|
Uganda|Ukraine|United Arab Emirates|United Kingdom|United States|USA|Uruguay|Uzbekistan|Vanuatu|Venezuela|Vietnam|
Viet Nam|Virgin Islands (U.S.)|Yemen|Zambia|Zimbabwe""".replace("\n", "").split("|")
)
_FOLDED = {c.lower(): c for c in COUNTRIES}
_MAX_COMMAS = max(c.count(",") for c in COUNTRIES)
# What the last comma-separated part of a line must be for any country to end it: a cheap
# test that turns away the many non-place lines of a locations section.
_LAST_PARTS = frozenset(c.split(",")[-1].strip() for c in _FOLDED)


def country_suffix(text: str) -> str | None:
    """The country a 'City, State, Country' line ends with, if any."""
    low = text.lower().rstrip(" .")
    parts = low.split(",")
    if parts[-1].strip() not in _LAST_PARTS:
        return None
    # Longest suffix first so "Korea, Republic of" wins over "Republic of".
    for n in range(min(_MAX_COMMAS + 1, len(parts)), 0, -1):
        hit = _FOLDED.get(",".join(parts[-n:]).strip())
        if hit:
            return hit
    return None
