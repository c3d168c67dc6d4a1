"""A tiny PySpark application that succeeds: counts a range and writes the count to the file named
by its first argument, so a test can see that the job really ran."""

import sys
from pathlib import Path

from pyspark.sql import SparkSession


def main() -> None:
    out = Path(sys.argv[1])
    spark = SparkSession.builder.getOrCreate()
    try:
        total = spark.range(1000).selectExpr("sum(id) AS s").collect()[0]["s"]
        out.write_text(f"sum={total}\n")
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
