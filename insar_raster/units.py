"""Time units shared by every module: one home for the length of a day and of a year.

Times on a cube's ``time`` axis are ``datetime64[ns]``; models work in days since the
epoch (float) and fit annual cycles with a 365.25-day year.
"""

#: Nanoseconds in a day (``datetime64[ns]`` <-> days).
DAY_NS = 86400 * 10**9

#: Days in a year for velocities (mm/year) and annual cycles.
DAYS_PER_YEAR = 365.25
