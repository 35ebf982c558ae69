"""Hand-written alias tables of the GeoNames KB builder.

Common English short forms and demonyms of countries and continents, AP-style
abbreviations of US states, and the "languages" of alternate names that are
links or codes rather than names. ``builder`` adds them to the package data.
"""

# Common English short forms of country names that the package lacks.
COUNTRY_ALIASES = {
    "US": "US|U.S.|U.S.A.|USA|America|United States of America",
    "GB": "UK|U.K.|Britain|Great Britain|United Kingdom of Great Britain and Northern Ireland",
    "AE": "UAE|U.A.E.|Emirates",
    "BA": "Bosnia",
    "BQ": "Bonaire",
    "BS": "The Bahamas",
    "CD": "DR Congo|DRC|Congo-Kinshasa|Congo",
    "CG": "Congo-Brazzaville|Congo",
    "CI": "Côte d'Ivoire|Cote d'Ivoire",
    "CN": "People's Republic of China|PRC",
    "CV": "Cape Verde",
    "CW": "Curaçao",
    "CZ": "Czech Republic",
    "GM": "The Gambia",
    "IE": "Republic of Ireland",
    "KP": "DPRK|Democratic People's Republic of Korea",
    "KR": "Korea|Republic of Korea",
    "MK": "Macedonia",
    "MM": "Burma",
    "MO": "Macau",
    "NL": "Netherlands|Holland",
    "PS": "Palestine",
    "RE": "Réunion",
    "RU": "Russian Federation",
    "ST": "São Tomé and Príncipe",
    "SZ": "Swaziland",
    "TL": "East Timor|Timor-Leste",
    "TR": "Türkiye",
    "VA": "Vatican City|Holy See",
    "VI": "US Virgin Islands",
    "VN": "Viet Nam",
}

# English demonyms: geoparsing corpora (LGL, GeoWebNews) annotate them as
# toponyms of the country. spaCy's NER tags them NORP, so a linker that only
# links GPE/LOC spans never sees them.
COUNTRY_DEMONYMS = {
    "AF": "Afghan|Afghans", "AL": "Albanian|Albanians", "AM": "Armenian|Armenians",
    "AR": "Argentine|Argentinian|Argentinians", "AT": "Austrian|Austrians",
    "AU": "Australian|Australians", "AZ": "Azerbaijani|Azerbaijanis|Azeri",
    "BA": "Bosnian|Bosnians", "BD": "Bangladeshi|Bangladeshis", "BE": "Belgian|Belgians",
    "BG": "Bulgarian|Bulgarians", "BH": "Bahraini|Bahrainis", "BO": "Bolivian|Bolivians",
    "BR": "Brazilian|Brazilians", "BY": "Belarusian|Belarusians", "CA": "Canadian|Canadians",
    "CD": "Congolese", "CH": "Swiss", "CL": "Chilean|Chileans", "CN": "Chinese",
    "CO": "Colombian|Colombians", "CU": "Cuban|Cubans", "CY": "Cypriot|Cypriots",
    "CZ": "Czech|Czechs", "DE": "German|Germans", "DK": "Danish|Dane|Danes",
    "DO": "Dominican|Dominicans", "DZ": "Algerian|Algerians", "EC": "Ecuadorian|Ecuadorians",
    "EE": "Estonian|Estonians", "EG": "Egyptian|Egyptians", "ES": "Spanish|Spaniard|Spaniards",
    "ET": "Ethiopian|Ethiopians", "FI": "Finnish|Finn|Finns", "FR": "French",
    "GB": "British|Briton|Britons|Brits", "GE": "Georgian|Georgians", "GH": "Ghanaian|Ghanaians",
    "GR": "Greek|Greeks", "GT": "Guatemalan|Guatemalans", "HN": "Honduran|Hondurans",
    "HR": "Croatian|Croat|Croats", "HT": "Haitian|Haitians", "HU": "Hungarian|Hungarians",
    "ID": "Indonesian|Indonesians", "IE": "Irish", "IL": "Israeli|Israelis",
    "IN": "Indian|Indians", "IQ": "Iraqi|Iraqis", "IR": "Iranian|Iranians",
    "IS": "Icelandic|Icelander|Icelanders", "IT": "Italian|Italians", "JM": "Jamaican|Jamaicans",
    "JO": "Jordanian|Jordanians", "JP": "Japanese", "KE": "Kenyan|Kenyans",
    "KG": "Kyrgyz", "KH": "Cambodian|Cambodians", "KP": "North Korean|North Koreans",
    "KR": "South Korean|South Koreans", "KW": "Kuwaiti|Kuwaitis", "KZ": "Kazakh|Kazakhs",
    "LB": "Lebanese", "LK": "Sri Lankan|Sri Lankans", "LT": "Lithuanian|Lithuanians",
    "LV": "Latvian|Latvians", "LY": "Libyan|Libyans", "MA": "Moroccan|Moroccans",
    "MK": "Macedonian|Macedonians", "MM": "Burmese", "MN": "Mongolian|Mongolians",
    "MT": "Maltese", "MX": "Mexican|Mexicans", "MY": "Malaysian|Malaysians",
    "NG": "Nigerian|Nigerians", "NI": "Nicaraguan|Nicaraguans", "NL": "Dutch",
    "NO": "Norwegian|Norwegians", "NP": "Nepalese|Nepali", "NZ": "New Zealander|New Zealanders",
    "OM": "Omani|Omanis", "PA": "Panamanian|Panamanians", "PE": "Peruvian|Peruvians",
    "PH": "Filipino|Filipinos|Philippine", "PK": "Pakistani|Pakistanis", "PL": "Polish|Pole|Poles",
    "PR": "Puerto Rican|Puerto Ricans", "PS": "Palestinian|Palestinians",
    "PT": "Portuguese", "QA": "Qatari|Qataris", "RO": "Romanian|Romanians",
    "RS": "Serbian|Serb|Serbs", "RU": "Russian|Russians", "RW": "Rwandan|Rwandans",
    "SA": "Saudi|Saudis|Saudi Arabian", "SD": "Sudanese", "SE": "Swedish|Swede|Swedes",
    "SG": "Singaporean|Singaporeans", "SI": "Slovenian|Slovenians", "SK": "Slovak|Slovaks",
    "SO": "Somali|Somalis", "SS": "South Sudanese", "SV": "Salvadoran|Salvadorans",
    "SY": "Syrian|Syrians", "TH": "Thai", "TJ": "Tajik|Tajiks", "TM": "Turkmen",
    "TN": "Tunisian|Tunisians", "TR": "Turkish|Turk|Turks", "TW": "Taiwanese",
    "TZ": "Tanzanian|Tanzanians", "UA": "Ukrainian|Ukrainians", "UG": "Ugandan|Ugandans",
    "US": "American|Americans", "UY": "Uruguayan|Uruguayans", "UZ": "Uzbek|Uzbeks",
    "VE": "Venezuelan|Venezuelans", "VN": "Vietnamese", "XK": "Kosovar|Kosovars",
    "YE": "Yemeni|Yemenis", "ZA": "South African|South Africans", "ZW": "Zimbabwean|Zimbabweans",
}

CONTINENT_ALIASES = {
    "AF": "African|Africans", "AS": "Asian|Asians", "EU": "European|Europeans",
    "NA": "North American|North Americans", "SA": "South American|South Americans",
    "OC": "Oceanian", "AN": "Antarctic",
}

# AP-style abbreviations of US states (and common variants).
STATE_ALIASES = {
    "AL": "Ala.", "AZ": "Ariz.", "AR": "Ark.", "CA": "Calif.|Cal.", "CO": "Colo.",
    "CT": "Conn.", "DE": "Del.", "DC": "D.C.|Washington, D.C.", "FL": "Fla.", "GA": "Ga.",
    "IL": "Ill.", "IN": "Ind.", "KS": "Kan.|Kans.", "KY": "Ky.", "LA": "La.", "MD": "Md.",
    "MA": "Mass.", "MI": "Mich.", "MN": "Minn.", "MS": "Miss.", "MO": "Mo.", "MT": "Mont.",
    "NE": "Neb.|Nebr.", "NV": "Nev.", "NH": "N.H.", "NJ": "N.J.", "NM": "N.M.", "NY": "N.Y.",
    "NC": "N.C.", "ND": "N.D.", "OK": "Okla.", "OR": "Ore.|Oreg.", "PA": "Pa.|Penn.",
    "RI": "R.I.", "SC": "S.C.", "SD": "S.D.", "TN": "Tenn.", "TX": "Tex.", "VT": "Vt.",
    "VA": "Va.", "WA": "Wash.", "WV": "W.Va.|W. Va.", "WI": "Wis.|Wisc.", "WY": "Wyo.",
}

# Alternate names of continents in these "languages" are links and codes.
_SKIP_NAME_LANGS = {"link", "wkdt", "post", "iata", "icao", "faac", "fr_1793", "unlc"}

