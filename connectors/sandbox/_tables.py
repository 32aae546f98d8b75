"""Fixed vocabularies the sandbox dataset draws from (titles, places, names, company words).

The lengths of `TITLES` (41) and `LOCATIONS` (53) are primes used as moduli by `dataset`; do not
change them without changing the moduli there. One place (Auckland, New Zealand) lies outside the
connectors' default partition countries on purpose: a search split by them misses those people,
as it would miss the rest of the world on a real provider.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Location:
    city: str
    state: str
    country: str
    country_code: str

    @property
    def label(self) -> str:
        return f"{self.city}, {self.state}, {self.country}"

    def matches_any(self, values: set[str]) -> bool:
        """Case-folded `values` name this place: its city, state, country or a label prefix."""
        parts = {self.city.lower(), self.state.lower(), self.country.lower()}
        parts.add(self.country_code.lower())
        label = self.label.lower()
        return any(v in parts or label.startswith(v) for v in values)


@dataclass(frozen=True, slots=True)
class Title:
    title: str
    seniority: str  # Apollo: owner founder c_suite partner vp head director manager senior entry
    management_level: str  # ZoomInfo: C Level Exec, VP Level Exec, Director, Manager, Non Manager
    department: str


def _t(title: str, seniority: str, department: str) -> Title:
    level = {
        "owner": "C Level Exec",
        "founder": "C Level Exec",
        "c_suite": "C Level Exec",
        "partner": "C Level Exec",
        "vp": "VP Level Exec",
        "head": "Director",
        "director": "Director",
        "manager": "Manager",
    }.get(seniority, "Non Manager")
    return Title(title, seniority, level, department)


TITLES: tuple[Title, ...] = (
    _t("Owner", "owner", "C-Suite"),
    _t("Founder", "founder", "C-Suite"),
    _t("Co-Founder", "founder", "C-Suite"),
    _t("Chief Executive Officer", "c_suite", "C-Suite"),
    _t("Chief Technology Officer", "c_suite", "Engineering"),
    _t("Chief Marketing Officer", "c_suite", "Marketing"),
    _t("Chief Financial Officer", "c_suite", "Finance"),
    _t("Managing Partner", "partner", "C-Suite"),
    _t("VP of Sales", "vp", "Sales"),
    _t("VP of Engineering", "vp", "Engineering"),
    _t("VP of Marketing", "vp", "Marketing"),
    _t("VP of Operations", "vp", "Operations"),
    _t("Head of Growth", "head", "Marketing"),
    _t("Head of Product", "head", "Product"),
    _t("Head of People", "head", "Human Resources"),
    _t("Director of Sales", "director", "Sales"),
    _t("Director of Engineering", "director", "Engineering"),
    _t("Marketing Director", "director", "Marketing"),
    _t("Finance Director", "director", "Finance"),
    _t("IT Director", "director", "Information Technology"),
    _t("Sales Manager", "manager", "Sales"),
    _t("Engineering Manager", "manager", "Engineering"),
    _t("Product Manager", "manager", "Product"),
    _t("Marketing Manager", "manager", "Marketing"),
    _t("Office Manager", "manager", "Operations"),
    _t("HR Manager", "manager", "Human Resources"),
    _t("Account Manager", "manager", "Sales"),
    _t("Senior Software Engineer", "senior", "Engineering"),
    _t("Senior Account Executive", "senior", "Sales"),
    _t("Senior Data Scientist", "senior", "Engineering"),
    _t("Senior Product Designer", "senior", "Product"),
    _t("Software Engineer", "entry", "Engineering"),
    _t("Account Executive", "entry", "Sales"),
    _t("Sales Development Representative", "entry", "Sales"),
    _t("Marketing Specialist", "entry", "Marketing"),
    _t("Recruiter", "entry", "Human Resources"),
    _t("Data Analyst", "entry", "Engineering"),
    _t("Customer Success Manager", "manager", "Sales"),
    _t("Operations Analyst", "entry", "Operations"),
    _t("Accountant", "entry", "Finance"),
    _t("Marketing Intern", "intern", "Marketing"),
)


def _l(city: str, state: str, country: str, code: str) -> Location:
    return Location(city, state, country, code)


_US = "United States"
LOCATIONS: tuple[Location, ...] = (
    _l("San Francisco", "California", _US, "US"),
    _l("Los Angeles", "California", _US, "US"),
    _l("San Diego", "California", _US, "US"),
    _l("San Jose", "California", _US, "US"),
    _l("New York", "New York", _US, "US"),
    _l("Buffalo", "New York", _US, "US"),
    _l("Austin", "Texas", _US, "US"),
    _l("Dallas", "Texas", _US, "US"),
    _l("Houston", "Texas", _US, "US"),
    _l("Seattle", "Washington", _US, "US"),
    _l("Chicago", "Illinois", _US, "US"),
    _l("Boston", "Massachusetts", _US, "US"),
    _l("Miami", "Florida", _US, "US"),
    _l("Orlando", "Florida", _US, "US"),
    _l("Atlanta", "Georgia", _US, "US"),
    _l("Denver", "Colorado", _US, "US"),
    _l("Phoenix", "Arizona", _US, "US"),
    _l("Portland", "Oregon", _US, "US"),
    _l("Minneapolis", "Minnesota", _US, "US"),
    _l("Detroit", "Michigan", _US, "US"),
    _l("Philadelphia", "Pennsylvania", _US, "US"),
    _l("Pittsburgh", "Pennsylvania", _US, "US"),
    _l("Nashville", "Tennessee", _US, "US"),
    _l("Raleigh", "North Carolina", _US, "US"),
    _l("Salt Lake City", "Utah", _US, "US"),
    _l("Columbus", "Ohio", _US, "US"),
    _l("London", "England", "United Kingdom", "GB"),
    _l("Manchester", "England", "United Kingdom", "GB"),
    _l("Edinburgh", "Scotland", "United Kingdom", "GB"),
    _l("Dublin", "Leinster", "Ireland", "IE"),
    _l("Berlin", "Berlin", "Germany", "DE"),
    _l("Munich", "Bavaria", "Germany", "DE"),
    _l("Hamburg", "Hamburg", "Germany", "DE"),
    _l("Paris", "Ile-de-France", "France", "FR"),
    _l("Lyon", "Auvergne-Rhone-Alpes", "France", "FR"),
    _l("Amsterdam", "North Holland", "Netherlands", "NL"),
    _l("Madrid", "Community of Madrid", "Spain", "ES"),
    _l("Barcelona", "Catalonia", "Spain", "ES"),
    _l("Milan", "Lombardy", "Italy", "IT"),
    _l("Stockholm", "Stockholm County", "Sweden", "SE"),
    _l("Copenhagen", "Capital Region", "Denmark", "DK"),
    _l("Zurich", "Zurich", "Switzerland", "CH"),
    _l("Warsaw", "Masovia", "Poland", "PL"),
    _l("Toronto", "Ontario", "Canada", "CA"),
    _l("Vancouver", "British Columbia", "Canada", "CA"),
    _l("Montreal", "Quebec", "Canada", "CA"),
    _l("Sydney", "New South Wales", "Australia", "AU"),
    _l("Auckland", "Auckland", "New Zealand", "NZ"),  # not in `partition_walk.COUNTRIES`
    _l("Singapore", "Singapore", "Singapore", "SG"),
    _l("Bangalore", "Karnataka", "India", "IN"),
    _l("Sao Paulo", "Sao Paulo", "Brazil", "BR"),
    _l("Mexico City", "CDMX", "Mexico", "MX"),
    _l("Tel Aviv", "Tel Aviv District", "Israel", "IL"),
)

#: Apollo's standard `organization_num_employees_ranges`; None = open-ended
SIZE_RANGES: tuple[tuple[int, int | None], ...] = (
    (1, 10),
    (11, 20),
    (21, 50),
    (51, 100),
    (101, 200),
    (201, 500),
    (501, 1000),
    (1001, 2000),
    (2001, 5000),
    (5001, 10000),
    (10001, None),
)
#: percent of companies (hence of people) per size range; 51-100 is deliberately > 41.7 %
SIZE_SHARES: tuple[int, ...] = (4, 6, 10, 45, 12, 8, 5, 4, 3, 2, 1)

FIRST_NAMES: tuple[str, ...] = tuple(
    "ada alan alice amara anna ben carla chen chloe daniel david diego elena emma ethan fatima "
    "felix grace hana hugo ines isaac ivan jack james jana jonas julia kai karim laura leo lena "
    "liam lucas maria mateo maya mia nadia noah nora olga omar oscar paula priya rafael rosa "
    "ruby sam sara sofia tariq theo tom uma victor wei yara yusuf zoe".title().split()
)
LAST_NAMES: tuple[str, ...] = tuple(
    "abbott adams baker banerjee berg bianchi brown campbell chen costa cruz dubois evans "
    "fischer garcia gomez gupta hansen hill ito jansen jones kaur kim kowalski larsen lee "
    "lopez martin meyer miller moreau murphy nakamura nguyen novak olsen patel perez petrov "
    "reyes rossi santos schmidt silva smith suzuki taylor thomas turner walker wang weber "
    "white wilson wong young zhang".title().split()
)
COMPANY_WORDS: tuple[str, ...] = tuple(
    "acme apex blue bright cedar cobalt copper delta ember fern granite harbor iron juniper "
    "keystone lumen maple nimbus north oak orbit pine quartz red river silver summit terra "
    "true vertex willow zenith".title().split()
)
COMPANY_NOUNS: tuple[str, ...] = tuple(
    "analytics labs systems software logistics health capital partners media robotics "
    "foods energy works studios networks dynamics solutions ventures bio cloud".title().split()
)
COMPANY_SUFFIXES: tuple[str, ...] = ("Group", "Inc", "Co", "Holdings", "International", "GmbH")
TLDS: tuple[str, ...] = ("com", "io", "co", "net", "ai")
INDUSTRIES: tuple[str, ...] = (
    "Computer Software",
    "Information Technology & Services",
    "Marketing & Advertising",
    "Financial Services",
    "Hospital & Health Care",
    "Logistics & Supply Chain",
    "Retail",
    "Renewables & Environment",
    "Real Estate",
    "Education Management",
)
